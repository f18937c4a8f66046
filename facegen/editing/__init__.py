"""Face editing: a face is a recipe (`Face`) of a latent, labels, truncation and ordered edits, rendered through
any Generator; directions (SeFa, PCA, user-labelled) turn into slider edits.

    from facegen.editing import Face, FaceRenderer, StyleMix, Camera, move_along, load_directions

    face = Face.from_seed(generator, 42, truncation_psi=0.7)            # pins the model's spec and sha256
    face = face.with_edits(StyleMix(preset_layers("coarse", generator.num_ws), seed=11))
    face = face.with_edits(move_along(load_directions(generator)["sefa-00"], 3.0, layers=range(4, 8)))
    image = FaceRenderer(generator).render(face)                      # HWC uint8; keep one renderer per model
    png = png_bytes(image, face.to_dict())                            # facegen.images; Face.from_png reads it back
"""

from facegen.editing.directions import (
    Direction,
    delete_direction,
    export_directions,
    find_direction,
    fit_labelled_direction,
    import_directions,
    load_directions,
    move_along,
    pca_directions,
    rename_direction,
    save_directions,
    sefa_directions,
)
from facegen.editing.face import (
    Camera,
    Edit,
    Face,
    MoveAlong,
    SetAttribute,
    SetClass,
    StoredLatent,
    StyleMix,
    check_face,
    describe_edit,
)
from facegen.editing.identity import FaceModel, model_identity
from facegen.editing.layers import LAYER_PRESETS, format_layers, parse_layers, preset_layers
from facegen.editing.render import FaceRenderer, render_face

__all__ = [
    "LAYER_PRESETS",
    "Camera",
    "Direction",
    "Edit",
    "Face",
    "FaceRenderer",
    "FaceModel",
    "MoveAlong",
    "SetAttribute",
    "SetClass",
    "StoredLatent",
    "StyleMix",
    "check_face",
    "delete_direction",
    "describe_edit",
    "export_directions",
    "find_direction",
    "fit_labelled_direction",
    "format_layers",
    "import_directions",
    "load_directions",
    "model_identity",
    "move_along",
    "parse_layers",
    "pca_directions",
    "preset_layers",
    "rename_direction",
    "render_face",
    "save_directions",
    "sefa_directions",
]
