"""LaunchDarkly's generated API client (PyPI `launchdarkly-api`), unchanged, against this
service: post, get, list, patch and delete a Segment destination, asserting on the typed
results. Run by tests/tests/end_to_end/api_lambda.rs.

Usage: ld_client_check.py BASE_URL API_TOKEN PROJECT ENVIRONMENT WRITE_KEY
Prints one JSON line describing what it saw; exits non-zero on the first failed check.
"""
import json
import sys

import launchdarkly_api
from launchdarkly_api.api.data_export_destinations_api import DataExportDestinationsApi
from launchdarkly_api.exceptions import BadRequestException, NotFoundException, UnauthorizedException
from launchdarkly_api.models.destination import Destination
from launchdarkly_api.models.destination_post import DestinationPost
from launchdarkly_api.models.destinations import Destinations
from launchdarkly_api.models.patch_operation import PatchOperation


def main():
    base, token, project, environment, write_key = sys.argv[1:6]
    masked = "*" * (len(write_key) - 4) + write_key[-4:]
    config = launchdarkly_api.Configuration(host=base)
    config.api_key["ApiKey"] = token
    seen = {}
    with launchdarkly_api.ApiClient(config) as client:
        api = DataExportDestinationsApi(client)

        created = api.post_destination(project, environment, DestinationPost(
            name="Segment via the LaunchDarkly client", kind="segment",
            config={"writeKey": write_key}, on=True))
        assert isinstance(created, Destination), type(created)
        assert created.id and created.kind == "segment" and created.on is True, created
        assert created.version == 1, created.version
        assert created.config["writeKey"] == masked, created.config
        assert created.links["self"].href.endswith(created.id), created.links
        assert created.access.allowed == [] and created.access.denied == [], created.access
        assert isinstance(created.created_at, int) and created.created_at > 0, created.created_at
        seen["created"] = created.id

        got = api.get_destination(project, environment, created.id)
        assert isinstance(got, Destination) and got.id == created.id and got.name == created.name, got

        # The first page, as the client asks for it (no parameters); the pages after it
        # through the client's own transport, following _links.next (README, "Pages").
        listed = api.get_destinations()
        assert isinstance(listed, Destinations), type(listed)
        assert 0 < len(listed.items) <= 20, len(listed.items)
        ids = [d.id for d in listed.items]
        page = listed
        while page.links.get("next") is not None:
            request = client.param_serialize(method="GET", resource_path=page.links["next"].href,
                                             header_params={"Accept": "application/json"},
                                             auth_settings=["ApiKey"])
            response = client.call_api(*request)
            response.read()
            page = client.response_deserialize(response, {"200": "Destinations"}).data
            assert isinstance(page, Destinations), type(page)
            ids += [d.id for d in page.items]
        assert created.id in ids, "created destination missing from the list"
        assert len(ids) == len(set(ids)), "a destination listed twice"
        seen["listed"] = len(ids)

        patched = api.patch_destination(project, environment, created.id, [
            PatchOperation(op="replace", path="/on", value=False),
            PatchOperation(op="replace", path="/name", value="renamed by the client"),
        ])
        assert isinstance(patched, Destination), type(patched)
        assert patched.on is False and patched.name == "renamed by the client", patched
        assert patched.version == 2, patched.version
        assert patched.config["writeKey"] == masked, patched.config
        seen["patchedVersion"] = patched.version

        try:
            api.post_destination(project, environment, DestinationPost(kind="segment", config={}))
            raise AssertionError("a POST without writeKey succeeded")
        except BadRequestException as e:
            assert e.status == 400 and e.data is not None and e.data.code == "invalid_request", (e.status, e.body)
            seen["badRequest"] = e.data.message

        assert api.delete_destination(project, environment, created.id) is None
        try:
            api.get_destination(project, environment, created.id)
            raise AssertionError("the deleted destination is still there")
        except NotFoundException as e:
            assert e.status == 404 and e.data.code == "not_found", (e.status, e.body)
            seen["deleted"] = True

    bad = launchdarkly_api.Configuration(host=base)
    bad.api_key["ApiKey"] = "not-a-token"
    with launchdarkly_api.ApiClient(bad) as client:
        try:
            DataExportDestinationsApi(client).get_destinations()
            raise AssertionError("a wrong token was accepted")
        except UnauthorizedException as e:
            assert e.status == 401, e.status
            seen["unauthorized"] = True
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
