"""Right to erasure, below the command: how erased people are recorded (`store`: keyed hashes, the key),
matched (`match`), purged from raw data (`purge`), found and removed in the working file (`database`) and
in the files around it (`files`), and kept out of every later run (`keep`, a pipeline step).

May import `rapport.core` and `rapport.transform` (the phone normalisation stitching uses). The `rapport
forget` command that sequences erasure, rebuild and republishing is `rapport.orchestration.forget`.
"""
