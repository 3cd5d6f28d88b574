"""copyhound's analyst TUI (Textual): from a prompt to every account that sent near-copies, and on to the ring.

`tui.app.run(workspace)` opens it; `tui.app.CopyhoundApp` is the App (it owns the `engine.Engine`).
Imports flow one way: tui -> engine; no module here imports duckdb, faiss or `index`.
"""
