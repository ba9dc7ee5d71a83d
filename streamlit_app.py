import streamlit as st

st.title("Autoencoder mix & un-mix")
