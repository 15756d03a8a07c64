"""Timbre Atlas: the st.navigation router. It draws what every page shares (ui.nav.frame: the sidebar's run
picker) and runs the chosen page; pages draw, ``ui/`` holds what they share, ``core/`` computes."""
import streamlit as st

from ui import nav

st.set_page_config(page_title="Timbre Atlas", page_icon=":material/graphic_eq:", layout="wide")
page = st.navigation(nav.app_pages())
nav.frame()
with nav.routing():
    page.run()
