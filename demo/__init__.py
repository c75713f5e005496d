"""rapport.demo: the embedded demo source systems.

- `generate.generate(out_dir, people=3000, seed=7, end=None, months=15)` writes a deterministic orders
  database, helpdesk export data and ESP export tree, with ground truth kept apart (see generate.py).
- `extend.extend(out_dir, end)` continues such a demo to a later day without redrawing it (extend*.py);
  `prepare.prepare_demo(...)` is what `rapport demo` calls: generate, continue, or stop with what to do.
- `helpdesk_server.serve_helpdesk(...)` serves the helpdesk data as a Zendesk-style incremental export
  on loopback, with optional fault injection.
"""
