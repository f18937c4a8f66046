"""Errors a user can cause. Each message names the problem and the fix; CLI and pages show only the message."""


class FacegenError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class ModelNotFoundError(FacegenError):
    pass


class FetchError(FacegenError):
    pass


class OfflineError(FetchError):
    """A download that could not start because this machine cannot reach the internet (no name resolution)."""


class UnsafePickleError(FacegenError):
    pass


class CorruptFileError(FacegenError):
    pass


class SpecError(FacegenError):
    """A model spec that names nothing, or two things."""


class ImageTooLargeError(FacegenError):
    """An image whose header or archive entry declares more pixels or bytes than facegen's limits allow."""
