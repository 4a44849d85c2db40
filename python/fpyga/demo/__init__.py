"""The paper's study with fpyga (Lorusso et al., ISGC 2022): two MLPs converted by hls4ml, run
sample by sample from a Python and a C++ host. ``python -m fpyga.demo`` runs it; see docs/demo.md.

Submodules: ``data`` (Iris, the muon surrogate, the trigger-style baseline), ``model`` (the
committed models and their float reference), ``train`` (``make retrain``), ``convert`` (hls4ml),
``host`` (the two hosts), ``report`` (figures, table, plots).
"""
