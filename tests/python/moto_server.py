"""moto's server, as `moto_server -H HOST -p PORT` runs it, but answering one request at a
time: threaded, moto's DynamoDB checks a condition and writes in two steps, so two
concurrent conditional writes can both pass, a lost update that real DynamoDB never
allows. The tests of optimistic concurrency need DynamoDB's guarantee."""

import os
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
run_simple(
    host,
    port,
    DomainDispatcherApplication(create_backend_app),
    threaded=False,
    request_handler=MotoRequestHandler,
)
