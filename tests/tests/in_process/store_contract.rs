//! The store contract (`tests/src/store_contract.rs`): every behaviour the store traits
//! promise, run against the in-memory store of the logic tests and against `DynamoStore`
//! on moto's DynamoDB, so that the two agree (DynamoDB's behaviour is the reference).
//! Each behaviour is a module with two tests, `memory` and `dynamo`.

use shared::store::{DynamoStore, Store};
use tests::memory::MemoryStore;
use tests::stack::shared;
use tests::store_contract as contract;

async fn dynamo() -> DynamoStore {
    shared(false).store().await
}

/// `behaviour => { memory, dynamo }` tests of `contract::behaviour`.
macro_rules! contract {
    ($($behaviour:ident),* $(,)?) => {$(
        mod $behaviour {
            #[tokio::test]
            async fn memory() {
                super::contract::$behaviour(&super::MemoryStore::new()).await;
            }

            #[tokio::test]
            async fn dynamo() {
                super::contract::$behaviour(&super::dynamo().await).await;
            }
        }
    )*};
}

contract!(
    create_is_refused_for_an_existing_id,
    replace_is_conditional_on_the_stored_version,
    delete_of_a_missing_destination_is_not_found,
    concurrent_replaces_have_one_winner,
    an_environment_reads_its_destinations_and_settings,
    an_environment_never_set_reads_as_defaults,
    settings_writes_are_conditional_on_their_version,
    sources_register_and_resolve,
    a_credential_of_another_environment_is_taken,
    a_credential_listed_twice_is_refused,
    sources_writes_are_conditional_on_their_version,
    rotation_keeps_an_old_digest,
    allowed_origins_resolve_with_their_client_side_id,
    delivery_reports_add_up_per_destination,
    delivery_buckets_are_a_ring_of_a_day,
    forget_delivery_removes_one_status,
    skipped_counts_add_up_per_hour_by_reason,
    environment_pages_resume_after_their_cursor,
);

/// Listing, with pages: on `DynamoStore` also with Scan requests of 2 items, so that one
/// page takes several requests.
mod pages_list_every_destination_once {
    use super::*;

    #[tokio::test]
    async fn memory() {
        contract::pages_list_every_destination_once(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn dynamo() {
        contract::pages_list_every_destination_once(&super::dynamo().await).await;
    }

    #[tokio::test]
    async fn dynamo_small_requests() {
        let store = super::dynamo().await.with_scan_page_size(2);
        let before = store.requests();
        store.list_destinations_page(contract::PAGE, None).await.unwrap();
        assert!(
            store.requests() - before >= 2,
            "a page of 3 read 2 items a request"
        );
        contract::pages_list_every_destination_once(&store).await;
    }
}
