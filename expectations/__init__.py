"""Data-quality gates (Great Expectations): `rapport.expectations.gate`; suites in `suites/*.json`."""
