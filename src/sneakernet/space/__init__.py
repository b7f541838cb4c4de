"""The space on drives as pure arithmetic, no I/O: a drive's budget (budget.py), the catalog's reservation and the
up-front refusals (reserve.py), and the one fill model pack and plan both use (fill.py)."""
