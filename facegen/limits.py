"""Input limits: the most any request or file may ask of memory, checked before the memory is spent.

Each limit is checked where the input is read, against what the input declares (a seed range's length, a zip
member's uncompressed size, an image header's pixel count, a checkpoint JSON's dims), never by trying. README.md,
"Limits", lists them for users.
"""

from __future__ import annotations

MEGABYTE = 1 << 20

# A grid of 100,000 faces is already hours of CPU; a longer seed list is a typo or an attempt to exhaust memory.
MAX_SEEDS_PER_REQUEST = 100_000

# Pixels of an uploaded photo or image file: a 48-megapixel phone photo fits; decoded as RGB it holds 150 MB.
MAX_IMAGE_PIXELS = 50_000_000

# Bytes of tensors a weights file may hold or declare: five times the largest catalog file (381.6 MB).
MAX_WEIGHTS_BYTES = 2048 * MEGABYTE

# torch.save stores its records uncompressed, so a checkpoint's records add up to its own size; a compressed
# re-zip gains little on float weights. A zip bomb expands a thousandfold.
MAX_WEIGHTS_ZIP_EXPANSION = 4

# Parameters a generator built from a checkpoint's JSON may have: MAX_WEIGHTS_BYTES of float32.
MAX_GENERATOR_PARAMETERS = MAX_WEIGHTS_BYTES // 4

# z and w sizes in a checkpoint's JSON: every published face GAN uses 512 or fewer.
MAX_LATENT_DIM = 4096

# Image side a checkpoint's JSON may declare: four times the largest published face GAN (1024 px).
MAX_RESOLUTION = 4096

# Uncompressed size of one image in a dataset zip: a 48-megapixel photo as PNG is about 100 MB at worst.
MAX_ZIP_MEMBER_BYTES = 128 * MEGABYTE
