"""Edit: steer one face with direction sliders, style mixing, truncation and the StyleGAN3 camera, then download
it with its recipe or send it to Interpolate. Slider moves rerun only the editing fragment, not the page."""

import streamlit as st

from facegen.editing import Face, describe_edit
from facegen.images import png_bytes
from facegen.train.runs import keep_recipe_checkpoint
from facegen.ui import face_editor as editor
from facegen.ui.handoff import INTERPOLATE, send_face
from facegen.ui.widgets import model_picker, ready_generator, route_through_app, run_or_show_error

route_through_app()
st.title("Edit a face")
generator = ready_generator(model_picker())
if generator is None:
    st.stop()
editor.show_notice()
start = editor.start_face(generator)
if start is None:
    st.stop()


@st.fragment
def edit_view(start: Face) -> None:
    view, controls = st.columns([3, 2], gap="medium")
    panels = ["Directions"] + ["Style mixing"] * generator.has_w_space + ["Camera"] * generator.has_camera
    tabs = dict(zip(panels, controls.tabs(panels)))
    with tabs["Directions"]:
        editor.pca_button(generator)
        directions = run_or_show_error(lambda: editor.slider_directions(generator)) or []
        moves = editor.direction_sliders(generator, directions)
    mix = camera = None
    if "Style mixing" in tabs:
        with tabs["Style mixing"]:
            mix = editor.style_mixing_panel(generator)
    if "Camera" in tabs:
        with tabs["Camera"]:
            camera = editor.camera_panel()
    face = editor.edited(start, [mix, *moves, camera])
    before_column, after_column = view.columns(2)
    before = run_or_show_error(lambda: editor.render(generator, start))
    after = run_or_show_error(lambda: editor.render(generator, face))
    if before is None or after is None:
        return
    for column, image, caption in [
        (before_column, before, f"Before: {editor.face_caption(start)}"),
        (after_column, after, f"After: {editor.edit_count(face)}"),
    ]:
        large = editor.shown_large(image)
        column.image(large, caption=caption, width=large.shape[1], output_format="PNG")
    view.caption(editor.size_note(generator))
    if face.edits:
        view.caption("Edits: " + "; ".join(describe_edit(edit) for edit in face.edits))
    download_column, send_column, reset_column = view.columns(3)
    name = f"seed{face.seed:04d}" if face.seed is not None else "face"
    download_column.download_button(
        "Download PNG", png_bytes(after, face.to_dict()), f"facegen-{name}-edited.png", "image/png",
        key="edit_download", on_click=keep_recipe_checkpoint, args=(generator.identity.spec,),
        help="The PNG carries the face's recipe: upload it here, or `facegen edit --from` it, to get it back.",
    )  # fmt: skip
    if send_column.button("Send to Interpolate", key="edit_send"):
        send_face(INTERPOLATE, face)
        st.toast("Sent to Interpolate: it is the last keyframe there now.", icon="✅")
    reset_column.button("Reset edits", key="edit_reset", on_click=editor.reset_edits)


edit_view(start)
st.divider()
st.subheader("Teach a direction")
st.caption("Mark faces that have an attribute and faces that don't; facegen fits a direction you can slide along.")
if st.toggle("Show faces to label", key="edit_labelling"):
    editor.labelling_panel(generator, start)
with st.expander("Saved directions: rename, delete, export, import"):
    editor.directions_manager(generator)
