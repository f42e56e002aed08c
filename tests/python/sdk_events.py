"""LaunchDarkly's server-side Python SDK (PyPI `launchdarkly-server-sdk`), unchanged, sending
its analytics events to this service's events URL: it evaluates three flags from a file data
source (no connection to LaunchDarkly) for a named user, an anonymous user and a multi-kind
context, tracks three custom events, then flushes and closes, so that everything is posted to
{eventsUri}/bulk (and diagnostics to {eventsUri}/diagnostic) before it exits.

Usage: python sdk_events.py EVENTS_URI SDK_KEY FLAGS_FILE [--gzip]

FLAGS_FILE is written by this script (LaunchDarkly's flag file format) and then read by the
SDK's file data source. --gzip turns on the SDK's optional event compression.
Prints one JSON object to stdout describing the evaluations and custom events (the SDK logs to
stderr); exits non-zero if the SDK did not initialize.
"""
import json
import logging
import sys

from ldclient import Context
from ldclient.client import LDClient
from ldclient.config import Config, HTTPConfig
from ldclient.integrations import Files

NOWHERE = "http://127.0.0.1:9"


def flag(key, version, variations, fallthrough, track_events=False):
    return {
        "key": key,
        "version": version,
        "on": True,
        "salt": key + "-salt",
        "variations": variations,
        "offVariation": 0,
        "fallthrough": fallthrough,
        "targets": [],
        "contextTargets": [],
        "rules": [],
        "prerequisites": [],
        "trackEvents": track_events,
        "trackEventsFallthrough": False,
        "clientSide": False,
        "deleted": False,
    }


FLAGS = {
    "flags": {
        "checkout-flow": flag("checkout-flow", 7, [False, True], {"variation": 1}, track_events=True),
        "experiment-flag": flag(
            "experiment-flag",
            3,
            ["control", "treatment"],
            {
                "rollout": {
                    "kind": "experiment",
                    "seed": 61,
                    "variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}],
                }
            },
        ),
        "quiet-flag": flag("quiet-flag", 2, [False, True], {"variation": 1}),
    },
    "segments": {},
}

USER = {"kind": "user", "key": "user-1", "name": "Ann"}
ANON = {"kind": "user", "key": "anon-1", "anonymous": True}
MULTI = {"kind": "multi", "user": {"key": "user-2"}, "organization": {"key": "org-1", "name": "Acme"}}

# (flag, context, with detail): a detail evaluation asks for the reason, which the SDK then
# puts in the feature event too (an experiment always carries its reason).
EVALUATIONS = [
    ("checkout-flow", USER, True),
    ("checkout-flow", ANON, False),
    ("checkout-flow", MULTI, False),
    ("experiment-flag", USER, True),
    ("experiment-flag", MULTI, True),
    ("quiet-flag", USER, True),
]
CUSTOM = [
    ("purchase", USER, {"sku": "sku-42", "price": 12.5}, 12.5),
    ("signup", MULTI, {"plan": "pro"}, None),
    ("page-view", ANON, None, None),
]


def main():
    args = sys.argv[1:]
    gzip = "--gzip" in args
    args = [a for a in args if a != "--gzip"]
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    events_uri, sdk_key, flags_file = args
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)

    with open(flags_file, "w") as f:
        json.dump(FLAGS, f, indent=2)

    config = Config(
        sdk_key,
        base_uri=NOWHERE,
        stream_uri=NOWHERE,
        events_uri=events_uri,
        send_events=True,
        update_processor_class=Files.new_data_source(paths=[flags_file]),
        enable_event_compression=gzip,
        # A loaded CI machine may take seconds to answer: a time-out would make the SDK
        # retry a post that ingest is still taking, which the test does not expect.
        http=HTTPConfig(connect_timeout=60, read_timeout=60),
    )
    client = LDClient(config=config, start_wait=5)
    if not client.is_initialized():
        print("the LaunchDarkly SDK did not initialize from " + flags_file, file=sys.stderr)
        client.close()
        return 1

    done = {"sdk": "python", "evaluations": [], "custom": []}
    for key, ctx, detail in EVALUATIONS:
        context = Context.from_dict(ctx)
        if not context.valid:
            raise SystemExit("invalid context %r: %s" % (ctx, context.error))
        variations = FLAGS["flags"][key]["variations"]
        if detail:
            d = client.variation_detail(key, context, None)
            value, variation, reason = d.value, d.variation_index, d.reason
        else:
            value = client.variation(key, context, None)
            variation, reason = variations.index(value), None
        done["evaluations"].append(
            {"flag": key, "context": ctx, "detail": detail, "value": value, "variation": variation, "reason": reason}
        )
    for key, ctx, data, metric in CUSTOM:
        client.track(key, Context.from_dict(ctx), data=data, metric_value=metric)
        done["custom"].append({"key": key, "context": ctx, "data": data, "metricValue": metric})

    client.flush()
    client.close()
    print(json.dumps(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
