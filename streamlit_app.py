"""facegen studio: `streamlit run streamlit_app.py`. Navigation only; each page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="facegen", page_icon=":material/face:", layout="wide")
navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/sample.py", title="Sample", icon=":material/casino:"),
        st.Page("pages/project.py", title="Project", icon=":material/photo_camera:"),
        st.Page("pages/interpolate.py", title="Interpolate", icon=":material/animation:"),
        st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    ]
)
navigation.run()
