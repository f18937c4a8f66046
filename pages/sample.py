"""Sample: faces by seed and truncation from any model, with per-image and grid downloads."""

import streamlit as st

from facegen.images import make_grid, png_bytes
from facegen.sampling import SampleRequest, recipe_for, render
from facegen.train.runs import keep_recipe_checkpoint
from facegen.ui.widgets import (
    enlarged_face,
    enlarged_for_screen,
    label_controls,
    model_picker,
    ready_generator,
    route_through_app,
    run_or_show_error,
    seed_input,
    truncation_cutoff_control,
    truncation_slider,
)

MAX_IMAGES_PER_PAGE = 64

route_through_app()
st.title("Sample faces")
model_spec = model_picker()
generator = ready_generator(model_spec)
if generator is not None:
    with st.sidebar:
        selection = seed_input(default="0-15")
        columns = st.slider("Grid columns", 1, 8, 4)
        truncation_psi = truncation_slider([generator])
        truncation_cutoff = truncation_cutoff_control(generator)
        noise_mode = st.selectbox("Noise", ["const", "random", "none"]) if generator.info.has_noise_inputs else "const"
        labels = label_controls(generator)
    if selection is not None and len(selection.seeds) > MAX_IMAGES_PER_PAGE:
        st.error(f"{len(selection.seeds)} seeds is more than this page shows at once ({MAX_IMAGES_PER_PAGE}). "
                 "Use a shorter list, or the CLI: python -m facegen sample --seeds … --out DIR/")
    elif selection is not None:
        request = SampleRequest(model_spec, selection.seeds, truncation_psi, noise_mode, labels, truncation_cutoff)
        images = run_or_show_error(lambda: render(generator, request))
        if images is not None:
            recipe = recipe_for(generator, request)
            grid = enlarged_for_screen(make_grid(images, columns), generator.resolution)
            st.image(grid.image, caption=f"{generator.info.model_id} · seeds {selection.text} · psi {truncation_psi} · {grid.note}", output_format="PNG")
            # a downloaded PNG's recipe names the model: a run checkpoint it names is kept from pruning
            keep = {"on_click": keep_recipe_checkpoint, "args": (generator.identity.spec,)}
            st.download_button("Download grid (PNG)", png_bytes(make_grid(images, columns), recipe), "facegen-grid.png", "image/png", **keep)
            with st.expander("Single images"):
                cells = st.columns(columns)
                for index, (seed, image) in enumerate(zip(selection.seeds, images)):
                    with cells[index % columns]:
                        st.image(enlarged_for_screen(image, generator.resolution).image, caption=f"seed {seed}", output_format="PNG")
                        single = dict(recipe, seeds=[seed])
                        enlarge, download = st.columns(2)
                        if enlarge.button("Enlarge", key=f"enlarge_{index}"):
                            enlarged_face(image, generator.resolution, f"{generator.info.model_id} · seed {seed}")
                        download.download_button("PNG", png_bytes(image, single), f"seed{seed:04d}.png", "image/png", key=f"dl_{index}", **keep)
