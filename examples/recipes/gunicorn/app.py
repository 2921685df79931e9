"""A WSGI app for baton's gunicorn recipe (docs/recipes.md): nothing baton-specific."""
import os


def app(environ, start_response):
    body = f"hello from gunicorn, worker {os.environ.get('BATON_WORKER_ID')} (pid {os.getpid()})\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
