"""Timbre Atlas: the st.navigation router. It sets up what every page shares (ui.nav.frame: page config, the
sidebar's run picker) and runs the chosen page; pages draw, ``ui/`` holds what they share, ``core/`` computes."""
import streamlit as st

from ui import nav

page = st.navigation(nav.app_pages())
nav.frame()
with nav.routing():
    page.run()
