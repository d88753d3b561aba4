"""The labelwise service: a FastAPI app over a store, plus the production loop it drives.

- :mod:`labelwise.service.rounds`: start a round, take labels, retrain (one call per route);
- :mod:`labelwise.service.features`: feature matrices of a project's items (cached);
- :mod:`labelwise.service.worker`: the background worker that runs durable jobs;
- :mod:`labelwise.service.progress`: where a project stands, in labels and money.

Nothing here is created at import time; ``create_app(settings, store)`` builds the app.
"""
