"""One module per resource; api/main.py collects them."""
