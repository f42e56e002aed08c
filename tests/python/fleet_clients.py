"""Several clients of LaunchDarkly's server-side Python SDK (PyPI `launchdarkly-server-sdk`),
unchanged, in one process, each on its own thread with the SDK key it is given, sending analytics
events to this service's events URL: for each of EVENTS contexts of its own
(`{name}-{i}`) a client evaluates `checkout-flow` (a flag with `trackEvents`: one feature
event) and tracks `purchase` with data `{"client": name, "n": i}` and metric value i. A short
flush interval and a pause between contexts make each client post many payloads while the
others do; each client waits for its posts, flushes and closes before the process exits. The fleet test (tests/tests/own_stacks/fleet.rs) runs
several of these beside the Node.js ones and the browser.

Usage: python fleet_clients.py EVENTS_URI FLAGS_FILE EVENTS NAME=SDK_KEY...

Prints one JSON object to stdout: {"clients": [{"name", "sdk", "contexts": [...], "values": [...]}]}
(the SDK logs to stderr); exits non-zero if a client did not initialize.
"""
import json
import logging
import sys
import threading
import time

from ldclient import Context
from ldclient.client import LDClient
from ldclient.config import Config, HTTPConfig
from ldclient.integrations import Files

NOWHERE = "http://127.0.0.1:9"
# Between two contexts: with the flush interval, a client posts every few contexts.
PACE_SECONDS = 0.1

FLAGS = {
    "flags": {
        "checkout-flow": {
            "key": "checkout-flow",
            "version": 7,
            "on": True,
            "salt": "checkout-flow-salt",
            "variations": [False, True],
            "offVariation": 0,
            "fallthrough": {"variation": 1},
            "targets": [],
            "contextTargets": [],
            "rules": [],
            "prerequisites": [],
            "trackEvents": True,
            "trackEventsFallthrough": False,
            "clientSide": False,
            "deleted": False,
        }
    },
    "segments": {},
}


def run_client(name, sdk_key, events_uri, flags_file, events, reports):
    config = Config(
        sdk_key,
        base_uri=NOWHERE,
        stream_uri=NOWHERE,
        events_uri=events_uri,
        send_events=True,
        update_processor_class=Files.new_data_source(paths=[flags_file]),
        flush_interval=0.2,
        diagnostic_opt_out=True,
        # A loaded machine may take seconds to answer: a time-out would make the SDK retry
        # a post that ingest is still taking.
        http=HTTPConfig(connect_timeout=60, read_timeout=60),
    )
    client = LDClient(config=config, start_wait=30)
    if not client.is_initialized():
        client.close()
        raise SystemExit("client %s did not initialize from %s" % (name, flags_file))
    report = {"name": name, "sdk": "python", "contexts": [], "values": []}
    for i in range(events):
        key = "%s-%d" % (name, i)
        context = Context.builder(key).kind("user").build()
        report["values"].append(client.variation("checkout-flow", context, None))
        client.track("purchase", context, data={"client": name, "n": i}, metric_value=i)
        report["contexts"].append(key)
        time.sleep(PACE_SECONDS)
    # close() flushes once, and a flush that finds the SDK's flush workers all busy leaves
    # its events behind: wait for them to be idle (the SDK's own test hook), flush, wait.
    client._event_processor._wait_until_inactive()
    client.flush()
    client._event_processor._wait_until_inactive()
    client.close()
    reports.append(report)


def main():
    args = sys.argv[1:]
    if len(args) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    events_uri, flags_file, events = args[0], args[1], int(args[2])
    clients = [a.split("=", 1) for a in args[3:]]
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    with open(flags_file, "w") as f:
        json.dump(FLAGS, f, indent=2)

    reports, failures = [], []

    def run(name, sdk_key):
        try:
            run_client(name, sdk_key, events_uri, flags_file, events, reports)
        except BaseException as e:  # noqa: BLE001 - reported below, the process fails
            failures.append("%s: %r" % (name, e))

    threads = [threading.Thread(target=run, args=(name, key)) for name, key in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    print(json.dumps({"clients": reports}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
