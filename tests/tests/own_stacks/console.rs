//! The console in headless Chromium (Debian's `chromium` and `chromium-driver`, through
//! WebDriver), against the real functions under `cargo lambda watch`, moto and the Segment
//! receiver: sign in, add a destination, send a test event and see Segment's answer, turn
//! on a flag, push events through `export` and see the destination delivering with
//! counts and why others were skipped, replay the last day and follow it to done, break
//! the receiver for its key and see it failing, delete it. The screenshot in
//! README.md is this test's (`make screenshot` writes it). No write key or token is ever in
//! the page's HTML, a URL, or a log of the run.

use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use serde_json::json;
use shared::store::Store;
use std::time::Duration;
use tests::browser::Browser;
use tests::fixtures::{envelope, unique};
use tests::process::workspace_root;
use tests::receiver::{Fault, FaultPlan};
use tests::sqs::{failed_ids, sqs_event};
use tests::stack::{LOCAL_API_TOKEN, LOCAL_READ_ONLY_TOKEN, Stack, StackOptions};

const WAIT: Duration = Duration::from_secs(60);

async fn find(client: &Client, css: &str) -> Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

/// Waits until the element at `css` has `text` in its text.
async fn wait_for_text(client: &Client, css: &str, text: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let seen = match client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if seen.contains(text) {
            return seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} never said {text:?}; it says {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The element at `css` once it is shown.
async fn find_shown(client: &Client, css: &str) -> Element {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let e = find(client, css).await;
        if e.is_displayed().await.unwrap_or(false) {
            return e;
        }
        assert!(std::time::Instant::now() < deadline, "{css} is never shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let input = find_shown(client, css).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// The environment's Data Export settings, as the API has them.
async fn get_settings(stack: &Stack, project: &str, env: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{}/api/v2/data-export/{project}/{env}", stack.api_base()))
        .header("authorization", LOCAL_API_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until `check` holds.
async fn wait_until(check: impl AsyncFn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of an attribute of the element at `css` ("" when it has none).
async fn attribute(client: &Client, css: &str, name: &str) -> String {
    find(client, css)
        .await
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Types the project and environment keys and loads the environment.
async fn load_environment(client: &Client, project: &str, env: &str) {
    type_into(client, "#project", project).await;
    type_into(client, "#environment", env).await;
    find(client, "#load").await.click().await.unwrap();
}

/// Signs in by typing the token and pressing Enter; waits for the access it gives.
async fn sign_in(client: &Client, token: &str, access: &str) {
    type_into(client, "#token", &format!("{token}\u{E007}")).await;
    wait_for_text(client, "#access", access).await;
}

/// Sends one custom event and one evaluation of `checkout-flow` through the `export`
/// binary; the record ids of the failed records.
async fn export_events(stack: &Stack, project: &str, env: &str, round: u32) -> Vec<String> {
    let event = |kind: &str, i: u32| {
        let mut e = json!({"kind": kind, "creationDate": 1_764_093_600_000_i64, "id": format!("console-{round}-{i}"),
                           "contextKeys": {"user": "analyst-1"}});
        if kind == "feature" {
            e["key"] = json!("checkout-flow");
            e["value"] = json!(true);
            e["variation"] = json!(1);
            e["version"] = json!(3);
        } else {
            e["key"] = json!("purchase");
        }
        envelope(project, env, e)
    };
    let (a, b) = (event("feature", 1), event("custom", 2));
    let response = stack
        .lambda()
        .invoke("export", &sqs_event([("r1", a.as_str()), ("r2", b.as_str())]))
        .await
        .unwrap();
    failed_ids(&response)
}

#[tokio::test]
async fn an_analyst_does_the_whole_workflow_in_the_browser() {
    // Its browser, stack and replay beside the fleet's left the fleet's browser SDK page
    // unfinished after two minutes (twice, in make test): one at a time.
    let _heavy = crate::HEAVY.lock().await;
    let stack = std::thread::spawn(|| Stack::start(StackOptions::tests("console", true)))
        .join()
        .unwrap()
        .expect("the local stack");
    let browser = Browser::start(&stack.log_dir).expect("chromedriver");
    let client = browser.session().await.unwrap();
    let console = format!("{}/console", stack.lambda().function_url("destinations"));
    let (project, env) = (unique("shop"), unique("production"));
    let write_key = unique("wk-console-analyst");

    // Every form control has a label.
    client.goto(&console).await.unwrap();
    let unlabelled = client
        .execute(
            "return [...document.querySelectorAll('input, select, textarea')]\
               .filter((e) => e.labels.length === 0).map((e) => e.id)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unlabelled, json!([]), "form controls without a label");

    // More destinations than a page holds (README, "Pages"): the environment picks and an
    // environment's list load page after page. At 50 a page, `z-last` is on the second.
    let paged = unique("paged");
    let store = stack.store().await;
    for i in 0..53 {
        let d = tests::fixtures::destination(&paged, "a-many", &format!("wk-console-page-{i:04}"));
        store.create_destination(&d).await.unwrap();
    }
    let last = tests::fixtures::destination(&paged, "z-last", "wk-console-page-last");
    store.create_destination(&last).await.unwrap();

    // Sign in, from the keyboard: the token goes to session storage only.
    sign_in(&client, LOCAL_API_TOKEN, "read-write").await;
    wait_for_text(&client, "#env-picks", &format!("{paged} / z-last")).await;
    load_environment(&client, &paged, "a-many").await;
    wait_until(
        async || {
            let shown = client
                .execute(
                    "return document.querySelectorAll('[data-testid=\"destination\"]').length",
                    vec![],
                )
                .await
                .unwrap();
            shown == json!(53)
        },
        "the 53 destinations of a-many, over two pages",
    )
    .await;

    // Pick the environment; a bad write key is refused with the API's message next to
    // the form; then add the destination.
    load_environment(&client, &project, &env).await;
    type_into(&client, "#new-write-key", "short").await;
    find(&client, "#create").await.click().await.unwrap();
    let error = wait_for_text(&client, "#add-error", "writeKey").await;
    assert_eq!(
        find(&client, "#add-error")
            .await
            .attr("role")
            .await
            .unwrap()
            .as_deref(),
        Some("alert"),
        "{error}"
    );
    // A key Segment does not know is refused at once (the CDN check, CONTRACT §4.1).
    let unknown_key = unique("wk-console-unknown");
    stack
        .receiver
        .set_cdn_key(&unknown_key, tests::receiver::CdnKey::Unknown);
    type_into(&client, "#new-write-key", &unknown_key).await;
    find(&client, "#create").await.click().await.unwrap();
    wait_for_text(&client, "#add-error", "Segment does not know this write key").await;
    type_into(&client, "#new-name", "Segment (production)").await;
    type_into(&client, "#new-write-key", &write_key).await;
    find(&client, "#new-region")
        .await
        .select_by_value("us")
        .await
        .unwrap();
    find(&client, "#create").await.click().await.unwrap();
    let item = r#"[data-testid="destination"][data-name="Segment (production)"]"#;
    find(&client, item).await;
    let shown = wait_for_text(&client, item, "no events yet").await;
    assert!(
        shown.contains(&write_key[write_key.len() - 4..]),
        "the masked key ends like the key: {shown}"
    );
    assert!(!shown.contains(&write_key), "the key is masked: {shown}");
    assert!(shown.contains("verified by Segment"), "the key's status: {shown}");

    // A test event, and Segment's answer with the API's guidance.
    find(&client, &format!(r#"{item} [data-testid="test"]"#))
        .await
        .click()
        .await
        .unwrap();
    let answer = wait_for_text(
        &client,
        &format!(r#"{item} [data-testid="test-result"]"#),
        "Segment answered HTTP 200",
    )
    .await;
    assert!(
        answer.to_lowercase().contains("debugger"),
        "where to look in Segment: {answer}"
    );
    assert_eq!(
        stack.receiver.messages(Some(&write_key)).len(),
        1,
        "the test event reached Segment"
    );

    // Turn it off and on again.
    let toggle = format!(r#"{item} [data-testid="toggle"]"#);
    find(&client, &toggle).await.click().await.unwrap();
    wait_for_text(&client, &format!("{item} .badge"), "Off").await;
    find(&client, &toggle).await.click().await.unwrap();
    wait_for_text(&client, &format!("{item} .badge"), "On").await;

    // The destination's options: Experiment Viewed on, and a Segment-compatible endpoint;
    // one inside the network is refused with the API's message next to the form.
    let edit_and_save = async |endpoint: &str, check_viewed: bool| {
        find(&client, &format!(r#"{item} [data-testid="edit"]"#))
            .await
            .click()
            .await
            .unwrap();
        let field = format!(r#"{item} [data-testid="edit-endpoint"]"#);
        find(&client, &field).await.clear().await.unwrap();
        if !endpoint.is_empty() {
            type_into(&client, &field, endpoint).await;
        }
        if check_viewed {
            find(
                &client,
                &format!(r#"{item} [data-testid="edit-experiment-viewed"]"#),
            )
            .await
            .click()
            .await
            .unwrap();
        }
        find(&client, &format!(r#"{item} [data-testid="save"]"#))
            .await
            .click()
            .await
            .unwrap();
    };
    edit_and_save("https://localhost:8443", true).await;
    wait_for_text(&client, &format!("{item} .error"), "loopback address").await;
    find(&client, &format!(r#"{item} [data-testid="cancel-edit"]"#))
        .await
        .click()
        .await
        .unwrap();
    edit_and_save("https://rudder.invalid/dataplane", true).await;
    wait_for_text(
        &client,
        &format!(r#"{item} [data-testid="endpoint"]"#),
        "https://rudder.invalid/dataplane",
    )
    .await;
    wait_for_text(&client, item, "sent for experiment evaluations").await;
    let stored = stack.store().await.environment(&project, &env).await.unwrap();
    let config = &stored.destinations[0].config;
    assert!(config.experiment_viewed);
    assert_eq!(
        config.endpoint.as_ref().unwrap().as_str(),
        "https://rudder.invalid/dataplane"
    );
    // Back to Segment itself (the rest of the walkthrough delivers there).
    edit_and_save("", false).await;
    wait_until(
        async || {
            let stored = stack.store().await.environment(&project, &env).await.unwrap();
            stored.destinations[0].config.endpoint.is_none()
        },
        "the endpoint removed",
    )
    .await;

    // Data Export: all flags on and off, one flag added, another added and removed.
    let settings = || get_settings(&stack, &project, &env);
    find(&client, "#all-flags").await.click().await.unwrap();
    wait_until(
        async || settings().await["allFlags"] == json!(true),
        "allFlags on",
    )
    .await;
    find(&client, "#all-flags").await.click().await.unwrap();
    wait_until(
        async || settings().await["allFlags"] == json!(false),
        "allFlags off",
    )
    .await;
    for flag in ["checkout-flow", "old-banner"] {
        type_into(&client, "#flag-key", flag).await;
        find(&client, "#add-flag").await.click().await.unwrap();
        find(
            &client,
            &format!(r#"#flags [data-testid="flag"][data-key="{flag}"]"#),
        )
        .await;
    }
    find(
        &client,
        r#"#flags [data-testid="flag"][data-key="old-banner"] [data-testid="remove"]"#,
    )
    .await
    .click()
    .await
    .unwrap();
    wait_until(
        async || settings().await["flags"] == json!({"checkout-flow": true}),
        "one flag left",
    )
    .await;

    // Events through export: delivering, with counts.
    assert!(export_events(&stack, &project, &env, 1).await.is_empty());
    assert_eq!(
        stack.receiver.messages(Some(&write_key)).len(),
        3,
        "test event, evaluation, custom event"
    );
    find(&client, "#refresh").await.click().await.unwrap();
    let status = format!(r#"{item} [data-testid="delivery-status"]"#);
    let text = wait_for_text(&client, &status, "2 delivered").await;
    assert_eq!(
        attribute(&client, &status, "data-state").await,
        "delivering",
        "{text}"
    );
    // Why events were not exported, in plain words: a flag not enabled here, a summary.
    let skipped = |kind: &str, i: u32| {
        envelope(
            &project,
            &env,
            json!({"kind": kind, "creationDate": 1_764_093_600_000_i64, "id": format!("console-skip-{i}"),
                   "key": "new-banner", "value": true, "contextKeys": {"user": "analyst-1"}}),
        )
    };
    let (s1, s2, s3) = (
        skipped("feature", 1),
        skipped("feature", 2),
        skipped("summary", 3),
    );
    // Unchanged statuses are written at most once per DELIVERY_STATUS_INTERVAL_SECONDS (2).
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let response = stack
        .lambda()
        .invoke(
            "export",
            &sqs_event([("s1", s1.as_str()), ("s2", s2.as_str()), ("s3", s3.as_str())]),
        )
        .await
        .unwrap();
    assert!(failed_ids(&response).is_empty());
    find(&client, "#refresh").await.click().await.unwrap();
    let reasons = format!(r#"{item} [data-testid="skip-reasons"]"#);
    let text = wait_for_text(
        &client,
        &reasons,
        "2 evaluations of new-banner skipped: the flag is not enabled for Data Export here.",
    )
    .await;
    assert!(text.contains("1 events of kinds never exported"), "{text}");
    client.set_window_size(1280, 1500).await.unwrap();
    client.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    let screenshot = client.screenshot().await.unwrap();
    std::fs::write(stack.log_dir.join("console.png"), &screenshot).unwrap();
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        std::fs::write(workspace_root().join("docs/console.png"), &screenshot).unwrap();
    }

    // A replay of the last day from the destination's "Replay…" action: started, its
    // progress followed until done (the replay queues drained as Lambda's event sources
    // would).
    let recent = envelope(
        &project,
        &env,
        json!({"kind": "custom", "id": "console-replayed", "key": "purchase",
               "creationDate": shared::timestamp::now_millis(), "contextKeys": {"user": "analyst-1"}}),
    );
    let response = stack
        .lambda()
        .invoke("export", &sqs_event([("live", recent.as_str())]))
        .await
        .unwrap();
    assert!(failed_ids(&response).is_empty());
    let delivered_live = stack.receiver.messages(Some(&write_key)).len();
    find(&client, &format!(r#"{item} [data-testid="replay"]"#))
        .await
        .click()
        .await
        .unwrap();
    find_shown(&client, &format!(r#"{item} [data-testid="start-replay"]"#))
        .await
        .click()
        .await
        .unwrap();
    let progress = format!(r#"{item} [data-testid="replay-progress"]"#);
    wait_for_text(&client, &progress, "Replay running").await;
    let drained = tests::replays::drain_replays(&stack, 10).await;
    assert_eq!((drained.tasks, drained.failed), (1, 0), "{drained:?}");
    let text = wait_for_text(&client, &progress, "Replay done").await;
    assert!(text.contains("1 read, 1 queued, 1 delivered"), "{text}");
    assert_eq!(
        stack.receiver.messages(Some(&write_key)).len(),
        delivered_live + 1,
        "the replayed event reached the destination again"
    );

    // Segment refuses the key: failing, with the reason.
    stack.receiver.set_faults(FaultPlan {
        write_key: write_key.clone(),
        always: Some(Fault::status(403)),
        ..FaultPlan::default()
    });
    assert_eq!(export_events(&stack, &project, &env, 2).await, ["r1", "r2"]);
    find(&client, "#refresh").await.click().await.unwrap();
    let text = wait_for_text(&client, &status, "failing since").await;
    assert!(text.contains("write key"), "the reason: {text}");
    assert_eq!(
        attribute(&client, &status, "data-state").await,
        "failing",
        "{text}"
    );

    // A read-only token gets a read-only console: the destination, and no way to change it.
    find_shown(&client, "#sign-out").await.click().await.unwrap();
    sign_in(&client, LOCAL_READ_ONLY_TOKEN, "read-only").await;
    load_environment(&client, &project, &env).await;
    find(&client, item).await;
    for write in [
        "#create",
        &format!(r#"{item} [data-testid="delete"]"#),
        &format!(r#"{item} [data-testid="toggle"]"#),
    ] {
        let shown = match client.find(Locator::Css(write)).await {
            Ok(e) => e.is_displayed().await.unwrap(),
            Err(_) => false,
        };
        assert!(!shown, "{write} is offered to a read-only token");
    }
    find_shown(&client, "#sign-out").await.click().await.unwrap();
    sign_in(&client, LOCAL_API_TOKEN, "read-write").await;
    load_environment(&client, &project, &env).await;
    find(&client, item).await;

    // The token is in this tab's session storage only: not in local storage or a cookie.
    let kept = client
        .execute(
            "return [JSON.stringify(Object.assign({}, localStorage)), document.cookie, \
                     Object.values(sessionStorage).some((v) => v.includes(arguments[0]))]",
            vec![json!(LOCAL_API_TOKEN)],
        )
        .await
        .unwrap();
    assert_eq!(
        kept,
        json!(["{}", "", true]),
        "local storage, cookies, session storage"
    );

    // Nothing secret in the page or its URL.
    let html = client.source().await.unwrap();
    let url = client.current_url().await.unwrap().to_string();
    for secret in [write_key.as_str(), LOCAL_API_TOKEN, LOCAL_READ_ONLY_TOKEN] {
        assert!(!html.contains(secret), "{secret} in the page's HTML");
        assert!(!url.contains(secret), "{secret} in the URL");
    }

    // Delete, after confirming.
    find(&client, &format!(r#"{item} [data-testid="delete"]"#))
        .await
        .click()
        .await
        .unwrap();
    find(&client, "#confirm-delete").await.click().await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while client.find(Locator::Css(item)).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the destination is still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.close().await.unwrap();

    // Nor in any log of the run: functions, emulator, moto, chromedriver.
    for entry in std::fs::read_dir(&stack.log_dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for secret in [write_key.as_str(), LOCAL_API_TOKEN, LOCAL_READ_ONLY_TOKEN] {
            assert!(!text.contains(secret), "{secret} in {}", path.display());
        }
    }
}
