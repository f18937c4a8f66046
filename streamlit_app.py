"""facegen studio: `streamlit run streamlit_app.py`. Navigation only; each page lives in pages/."""

import streamlit as st

from facegen.public import policy

rules = policy()
# on a public server a traceback would show server paths: errors show their message only
st.set_option("client.showErrorDetails", "full" if rules.show_error_details else "none")
st.set_page_config(page_title="facegen", page_icon=":material/face:", layout="wide")
pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/sample.py", title="Sample", icon=":material/casino:"),
    st.Page("pages/edit.py", title="Edit", icon=":material/tune:"),
    st.Page("pages/project.py", title="Project", icon=":material/photo_camera:"),
    st.Page("pages/interpolate.py", title="Interpolate", icon=":material/animation:"),
    st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
]
if not rules.training_allowed:
    pages = [page for page in pages if page.title != "Training"]
navigation = st.navigation(pages)
navigation.run()
