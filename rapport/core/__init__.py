"""What every part of a run shares: configuration (`config`), the working warehouse and its locks
(`warehouse`), the identity of a run (`run_context`) and progress lines for people watching (`progress`).

Imports nothing else of rapport: everything may import it.
"""
