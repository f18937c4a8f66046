import pytest

from facegen.errors import FacegenError
from facegen.latent import parse_seeds


@pytest.mark.parametrize(
    ("spec", "seeds"),
    [("0-3", [0, 1, 2, 3]), ("1,7,42", [1, 7, 42]), ("0-2,42, 5", [0, 1, 2, 42, 5]), ("9", [9])],
)
def test_seed_specs_expand_in_order(spec, seeds):
    assert parse_seeds(spec) == seeds


@pytest.mark.parametrize("spec", ["", "a", "1-", "-3", "1,,2", "1.5", "3-x", "1-2-3"])
def test_malformed_seed_specs_say_how_to_write_them(spec):
    with pytest.raises(FacegenError, match="seed|Seed"):
        parse_seeds(spec)


def test_backwards_range_suggests_the_fix():
    with pytest.raises(FacegenError, match="'3-9'"):
        parse_seeds("9-3")


def test_seed_beyond_numpy_range_is_rejected():
    with pytest.raises(FacegenError, match="too large"):
        parse_seeds(str(2**32))


def test_a_trailing_comma_is_accepted_and_a_double_comma_named_plainly():
    assert parse_seeds("1,7,42,") == [1, 7, 42]
    with pytest.raises(FacegenError) as caught:
        parse_seeds("1,,7")
    assert str(caught.value) == "Seed list '1,,7' has two commas in a row; remove one, e.g. '1,7,42'."
