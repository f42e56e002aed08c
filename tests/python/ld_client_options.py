"""LaunchDarkly's generated API client (PyPI `launchdarkly-api`), unchanged, with this
service's own destination options: `experimentViewed` and `endpoint` are config fields the
client does not know, so they must pass through its `config` dictionary both ways. Run by
tests/tests/own_stacks/options.rs.

Usage: ld_client_options.py BASE_URL API_TOKEN PROJECT ENVIRONMENT WRITE_KEY ENDPOINT
Prints the destination as the client last saw it (one JSON line); exits non-zero on the
first failed check.
"""
import json
import sys

import launchdarkly_api
from launchdarkly_api.api.data_export_destinations_api import DataExportDestinationsApi
from launchdarkly_api.exceptions import BadRequestException
from launchdarkly_api.models.destination_post import DestinationPost
from launchdarkly_api.models.patch_operation import PatchOperation


def main():
    base, token, project, environment, write_key, endpoint = sys.argv[1:7]
    config = launchdarkly_api.Configuration(host=base)
    config.api_key["ApiKey"] = token
    with launchdarkly_api.ApiClient(config) as client:
        api = DataExportDestinationsApi(client)
        created = api.post_destination(project, environment, DestinationPost(
            name="Experiments to a Segment-compatible receiver", kind="segment",
            config={"writeKey": write_key, "endpoint": endpoint, "experimentViewed": False}))
        assert created.config["endpoint"] == endpoint, created.config
        assert created.config["experimentViewed"] is False, created.config

        patched = api.patch_destination(project, environment, created.id, [
            PatchOperation(op="replace", path="/config/experimentViewed", value=True),
        ])
        assert patched.config["experimentViewed"] is True and patched.version == 2, patched

        try:
            api.patch_destination(project, environment, created.id, [
                PatchOperation(op="replace", path="/config/experimentViewed", value="yes"),
            ])
            raise AssertionError("a non-boolean experimentViewed was accepted")
        except BadRequestException as e:
            assert "config.experimentViewed" in e.data.message, e.data.message

        got = api.get_destination(project, environment, created.id)
        assert got.config["endpoint"] == endpoint and got.config["experimentViewed"] is True, got.config
        print(json.dumps({"id": got.id, "version": got.version, "config": got.config}))


if __name__ == "__main__":
    main()
