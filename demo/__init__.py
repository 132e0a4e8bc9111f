"""The demo: the separability paper's two crowd batches and the PandaLM human test set, loaded by
`manage.py load_demo`. It reaches into every app (imports, studies, separability, releases), so it sits
above them all and nothing imports it."""
