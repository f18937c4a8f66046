"""Faces handed from one page to another within a session: Edit or Project sends a face, the receiving page takes it.

A face travels as its recipe (`Face.to_dict()`), so the receiving page renders exactly what the sender showed.
"""

from __future__ import annotations

import streamlit as st

from facegen.editing import Face

EDIT, INTERPOLATE = "edit", "interpolate"


def _inbox(page: str) -> list[dict]:
    return st.session_state.setdefault(f"handoff_{page}", [])


def send_face(page: str, face: Face) -> None:
    """Queue `face` for `page` (EDIT opens it, INTERPOLATE adds it as a keyframe)."""
    _inbox(page).append(face.to_dict())


def take_faces(page: str) -> list[Face]:
    """The faces sent to `page` since it last looked, oldest first; the inbox is emptied."""
    inbox = _inbox(page)
    faces = [Face.from_dict(values, "a face sent from another page") for values in inbox]
    inbox.clear()
    return faces
