//! The conformance suite every backend runs, and (for server backends) the throwaway-server
//! harness. A dev-dependency only.
//!
//! One module per store holds plain `async fn`s taking a [`Subject`]; a backend's
//! `tests/conformance.rs` stamps them all out as tests with [`conformance_tests!`]:
//!
//! ```text
//! async fn setup() -> storage_testkit::Subject { /* fresh stores on a manual clock */ }
//! storage_testkit::conformance_tests!(crate::setup);
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, missing_docs)]

pub mod approval_request;
pub mod ar_invoice;
pub mod at_rest;
pub mod audit;
pub mod audit_trail;
pub mod bench;
pub mod bot_installation;
pub mod channel_subscription;
pub mod debate_archive;
pub mod decision_result;
pub mod email;
pub mod engine;
pub mod expense;
pub mod external_identity;
pub mod faults;
pub mod federation;
pub mod finding_workflow;
pub mod fts;
pub mod gauntlet_run;
pub mod gmail_token;
pub mod governance;
pub mod history;
pub mod impersonation;
pub mod inbox;
pub mod inbox_activity;
pub mod integration;
pub mod invitation;
pub mod invoice;
pub mod job_queue;
pub mod marketplace;
pub mod model;
pub mod network;
pub mod notification;
pub mod oauth;
pub mod onboarding;
pub mod organization;
pub mod password_reset;
pub mod pipeline;
pub mod plaid;
pub mod playground;
pub mod power_loss;
pub mod properties;
pub mod provenance;
pub mod proxy;
pub mod receipt;
pub mod rotation;
pub mod server;
pub mod share;
pub mod slack_debate;
pub mod token_blacklist;
pub mod usage;
pub mod user;
pub mod webhook;
pub mod webhook_config;

use std::any::Any;
use std::sync::Arc;
use storage_core::{Clock, Engine, ManualClock, Page, PageRequest, Result, StorageError, Store, TenantId};

/// A fresh, empty backend on a manual clock (webhook TTL: the default 24 h).
pub struct Subject {
    /// The clock every store reads; tests move it instead of sleeping.
    pub clock: ManualClock,
    /// The backend.
    pub engine: Arc<dyn Engine>,
    /// Whatever must live as long as the backend (a temp dir).
    pub guard: Option<Box<dyn Any + Send + Sync>>,
}

impl Subject {
    /// Store `S` on this backend.
    pub fn store<S: Store>(&self) -> S {
        S::on(self.engine.as_ref())
    }
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject").field("clock", &self.clock).finish_non_exhaustive()
    }
}

/// A tenant id for tests.
pub fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

/// Reads every page of a list.
pub async fn collect_all<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
{
    let mut request = PageRequest::first(limit);
    let mut all = Vec::new();
    loop {
        let page = fetch(request.clone()).await.expect("list page");
        assert!(page.items.len() <= limit as usize, "a page exceeded its limit");
        let next = request.next(page.next.as_ref());
        all.extend(page.items);
        match next {
            Some(next) => request = next,
            None => return all,
        }
    }
}

/// Pages through a list of `limit` while `churn` runs between pages (creating and deleting other
/// records of the tenant); returns every key seen, in order. A record that existed throughout
/// must appear exactly once.
pub async fn page_under_churn<T, F, Fut, C, CFut>(limit: u32, mut fetch: F, key: impl Fn(&T) -> String, mut churn: C) -> Vec<String>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
    C: FnMut(u32) -> CFut,
    CFut: std::future::Future<Output = ()>,
{
    let mut request = PageRequest::first(limit);
    let mut seen = Vec::new();
    for round in 0.. {
        let page = fetch(request.clone()).await.expect("list page");
        seen.extend(page.items.iter().map(&key));
        churn(round).await;
        match request.next(page.next.as_ref()) {
            Some(next) => request = next,
            None => break,
        }
    }
    seen
}

/// Asserts that each of `expected` appears exactly once in `seen`.
pub fn assert_each_once(seen: &[String], expected: impl IntoIterator<Item = String>, what: &str) {
    for key in expected {
        let n = seen.iter().filter(|k| **k == key).count();
        assert_eq!(n, 1, "{what}: `{key}` appeared {n} times in {seen:?}");
    }
}

/// Asserts that `result` is an `InvalidInput` naming `field`.
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T>, field: &str) {
    match result {
        Err(StorageError::InvalidInput { field: f, reason }) => {
            assert!(f.contains(field), "expected the error to name `{field}`, got `{f}`: {reason}")
        }
        other => panic!("expected InvalidInput for `{field}`, got {other:?}"),
    }
}

/// The body of the record `id` of `tenant` as the backend holds it (sealed parts and all).
pub async fn raw_body<D: storage_core::Document>(s: &Subject, tenant: &TenantId, id: &str) -> String {
    let rows = s.engine.tables().get(&D::TABLE, tenant, &[id.to_owned()], s.clock.now()).await.expect("raw");
    rows.into_iter().next().expect("row").body
}

/// Writes `body` as the stored body of `doc` behind the store's back (its indexes from `doc`).
pub async fn overwrite<D: storage_core::Document>(s: &Subject, tenant: &TenantId, doc: &D, body: String) {
    let row = storage_core::RowWrite {
        table: &D::TABLE,
        tenant: tenant.clone(),
        id: doc.id(),
        indexes: doc.index_values(),
        expires_at: doc.expires_at(),
        body,
        search: D::TABLE.search.then(|| doc.search_text()),
    };
    let write = storage_core::Change::Write { row, mode: storage_core::WriteMode::Upsert };
    s.engine.tables().apply(tenant, vec![write], s.clock.now()).await.expect("overwrite");
}

/// Stamps out every conformance case as a test, in modules named after the stores.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path) => {
        $crate::conformance_module!(
            $setup,
            properties,
            [
                integrations_read_back_whatever_they_accept,
                gmail_states_read_back_whatever_they_accept,
                webhook_claims_hold_whatever_they_accept,
            ]
        );
        $crate::conformance_module!(
            $setup,
            engine,
            [
                filters_match_the_reference_semantics,
                orders_by_an_index_both_ways_with_keyset_pages,
                pages_stay_whole_under_concurrent_inserts_and_deletes,
                undeclared_columns_wrong_kinds_and_foreign_cursors_are_invalid,
                counts_and_sweeps_in_a_tenant_and_across_tenants,
                expired_records_vanish_everywhere_and_purge_sweeps_them,
                unique_keys_refuse_a_second_holder_and_find_their_record,
                increments_are_atomic_and_capped,
                get_many_returns_what_exists_in_order,
                units_apply_all_or_nothing,
                sealed_fields_cannot_be_removed_or_moved,
            ]
        );
        $crate::conformance_module!($setup, rotation, [rotation_reseals_everything_and_retires_the_old_key,]);
        $crate::conformance_module!(
            $setup,
            integration,
            [
                set_then_get_round_trips,
                set_keeps_created_at_and_bumps_the_version,
                create_never_overwrites,
                update_checks_the_version,
                delete_reports_whether_it_existed,
                lists_paginate_in_key_order,
                index_changes_move_records_between_lists,
                tenants_are_isolated,
                user_mappings_round_trip,
                bad_input_is_refused_and_nothing_is_written,
                concurrent_updates_lose_nothing,
                lists_by_tenant_user_and_type,
                counters_are_atomic_increments,
                user_mappings_are_found_by_email_whatever_its_case,
                settings_round_trip_whatever_their_text_and_refuse_what_could_not,
                every_list_pages_whole_under_churn,
            ]
        );
        $crate::conformance_module!(
            $setup,
            webhook,
            [
                first_claim_acquires_and_a_duplicate_is_in_flight,
                completed_events_report_the_stored_result,
                release_makes_the_event_claimable_again,
                a_lapsed_lease_is_taken_over_and_the_old_holder_fenced,
                deliveries_expire_after_the_ttl,
                mark_delivered_and_is_delivered,
                concurrent_claims_have_exactly_one_winner,
                tenants_are_isolated,
                bad_input_is_refused_and_nothing_is_written,
                absurd_leases_and_results_are_invalid_input,
            ]
        );
        $crate::conformance_module!(
            $setup,
            gmail_token,
            [
                set_then_get_keeps_the_tenant_and_tokens,
                set_keeps_created_at_and_bumps_the_version,
                list_expiring_finds_tokens_to_refresh,
                refresh_and_sync_progress_never_lose_each_other,
                tenants_are_isolated,
                bad_input_is_refused_and_nothing_is_written,
                sync_jobs_round_trip,
                list_expiring_everywhere_spans_tenants_soonest_first,
                concurrent_patches_are_delayed_never_refused,
                instants_outside_the_stored_range_are_refused,
                every_list_pages_whole_under_churn,
            ]
        );
        $crate::conformance_module!(
            $setup,
            user,
            [
                users_are_found_by_id_and_by_email_in_any_case,
                concurrent_sign_ups_with_one_email_have_one_winner,
                updates_change_only_what_the_change_set_names,
                api_keys_are_found_by_key_until_they_expire_or_are_revoked,
                token_versions_increment_atomically,
                failed_sign_ins_lock_by_one_policy,
                concurrent_failed_sign_ins_lock_once_and_count_exactly,
                admins_list_count_and_summarise_users,
                deleting_a_user_keeps_every_organisation_owned,
            ]
        );
        $crate::conformance_module!($setup, model, [user_and_organisation_operations_match_the_memory_model]);
        $crate::conformance_module!(
            $setup,
            organization,
            [
                creating_an_organisation_makes_its_owner_a_member,
                concurrent_creations_with_one_name_get_distinct_slugs,
                stripe_ids_find_their_organisation_and_stay_unique,
                members_join_change_role_and_leave_but_an_owner_always_remains,
                concurrent_demotions_never_leave_an_organisation_without_owner,
                usage_never_passes_the_limit,
                the_monthly_reset_happens_once_per_cycle,
            ]
        );
        $crate::conformance_module!(
            $setup,
            invitation,
            [
                invitations_are_found_by_token_email_and_org,
                an_invitation_is_accepted_once_before_it_expires,
                concurrent_accepts_have_one_winner,
            ]
        );
        $crate::conformance_module!(
            $setup,
            oauth,
            [a_provider_identity_is_never_moved_to_another_user, concurrent_links_of_one_identity_have_one_winner]
        );
        $crate::conformance_module!(
            $setup,
            external_identity,
            [identities_link_once_per_subject_and_never_move, concurrent_first_sign_ins_create_one_identity]
        );
        $crate::conformance_module!(
            $setup,
            onboarding,
            [one_flow_per_user_and_org_advances_and_completes, vertical_configs_are_saved_replaced_and_listed]
        );
        $crate::conformance_module!($setup, usage, [usage_events_list_newest_first_and_total_by_type]);
        $crate::conformance_module!(
            $setup,
            audit,
            [
                entries_chain_and_answer_queries_newest_first,
                concurrent_appends_form_one_unbroken_chain,
                verify_names_the_first_altered_removed_or_reordered_entry,
                a_thousand_clean_chains_verify_clean,
                retention_moves_the_anchor_and_leaves_an_entry,
                an_audited_change_and_its_entry_commit_together,
            ]
        );
        $crate::conformance_module!(
            $setup,
            audit_trail,
            [trails_and_receipts_are_written_once_per_gauntlet_run, lists_count_and_retention, a_trail_altered_behind_the_store_is_refused]
        );
        $crate::conformance_module!(
            $setup,
            governance,
            [
                an_approval_is_decided_once_before_its_deadline,
                concurrent_decisions_have_one_winner,
                verifications_and_decisions_list_newest_first_and_expire,
            ]
        );
        $crate::conformance_module!(
            $setup,
            bot_installation,
            [
                an_inbound_event_finds_its_installation_without_a_tenant,
                expiring_tokens_are_found_across_tenants,
                one_worker_at_a_time_holds_a_refresh_lease,
                the_seed_platform_stores_see_only_their_platform,
            ]
        );
        $crate::conformance_module!(
            $setup,
            plaid,
            [items_are_linked_relinked_and_listed_without_tokens, concurrent_links_of_one_item_keep_one_record]
        );
        $crate::conformance_module!(
            $setup,
            notification,
            [channels_and_recipients_are_per_organisation, template_overrides_are_per_user_and_template]
        );
        $crate::conformance_module!(
            $setup,
            slack_debate,
            [
                one_debate_per_thread_found_by_thread_user_and_status,
                debates_move_on_only_as_their_status_allows,
                concurrent_status_changes_have_one_winner,
            ]
        );
        $crate::conformance_module!(
            $setup,
            webhook_config,
            [
                webhooks_register_list_update_and_rotate_their_secret,
                an_event_finds_its_webhooks_in_a_tenant_and_across_tenants,
                concurrent_deliveries_and_event_changes_lose_nothing,
            ]
        );
        $crate::conformance_module!(
            $setup,
            channel_subscription,
            [one_subscription_per_channel_found_by_event_type, concurrent_subscriptions_of_one_channel_have_one_winner]
        );
        $crate::conformance_module!(
            $setup,
            inbox,
            [
                messages_are_deduplicated_ranked_and_counted_with_their_account,
                concurrent_upserts_of_one_message_insert_it_once,
                search_finds_words_of_subject_sender_and_snippet_in_its_tenant,
                generated_queries_never_fail_and_known_phrases_are_found,
            ]
        );
        $crate::conformance_module!(
            $setup,
            inbox_activity,
            [activities_list_newest_first_in_their_organisation_and_expire, pages_of_activities_stay_whole_while_more_are_logged]
        );
        $crate::conformance_module!(
            $setup,
            email,
            [
                settings_and_vip_senders_are_per_user_and_workspace,
                shared_inboxes_keep_members_messages_and_their_search_together,
                routing_rules_run_by_priority_and_count_every_match,
                decisions_take_feedback_on_the_latest_and_report_accuracy,
            ]
        );
        $crate::conformance_module!(
            $setup,
            receipt,
            [
                a_receipt_is_written_once_and_checked_on_every_read,
                receipts_list_in_four_orders_both_ways_with_counts_and_search,
                signatures_timestamps_and_holds_change_only_what_they_may,
                deletion_is_logged_atomically_and_refused_under_hold,
                retention_keeps_held_receipts_and_logs_every_deletion,
                a_hold_placed_during_retention_wins_or_finds_the_receipt_gone,
            ]
        );
        $crate::conformance_module!(
            $setup,
            invoice,
            [
                an_invoice_moves_through_approval_as_its_status_allows,
                concurrent_payments_with_repeated_keys_are_counted_once,
                duplicates_schedules_and_overdue_invoices_are_found,
                payments_and_refunds_keep_the_balance_exact,
            ]
        );
        $crate::conformance_module!(
            $setup,
            ar_invoice,
            [
                receivables_are_sent_reminded_and_settled_with_write_offs_apart,
                aging_and_customer_balances_are_exact_per_currency,
                concurrent_receivable_payments_lose_no_update,
                customers_are_kept_per_tenant,
            ]
        );
        $crate::conformance_module!(
            $setup,
            gauntlet_run,
            [
                a_run_round_trips_and_a_second_save_changes_nothing,
                runs_move_only_as_their_status_allows,
                concurrent_status_changes_have_one_winner,
                runs_list_newest_first_and_the_queue_has_positions,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
                tenants_never_see_or_change_each_others_runs,
            ]
        );
        $crate::conformance_module!(
            $setup,
            approval_request,
            [
                a_request_round_trips_and_lists_by_status_and_workflow,
                pending_requests_list_by_priority_then_newest_in_stable_pages,
                concurrent_responders_have_one_winner,
                every_decided_or_overdue_request_refuses_a_response,
                deadlines_compare_as_instants_and_the_sweep_expires_only_overdue_requests,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
                tenants_never_see_or_change_each_others_requests,
            ]
        );
        $crate::conformance_module!(
            $setup,
            decision_result,
            [
                results_expire_after_their_ttl_and_a_resave_keeps_created_at,
                a_tenant_keeps_at_most_its_cap_least_recently_saved_going_first,
                every_instance_reads_the_same_rows,
                concurrent_saves_leave_a_tenant_at_its_cap,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
                tenants_never_see_or_change_each_others_results,
            ]
        );
        $crate::conformance_module!(
            $setup,
            expense,
            [
                sums_are_exact_per_currency_and_never_mixed,
                duplicates_are_found_by_vendor_total_and_a_window_around_the_date,
                totals_match_as_integers_not_as_text,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
                tenants_never_see_each_others_expenses,
                every_move_the_status_machine_forbids_is_a_conflict_and_changes_nothing,
                expenses_move_as_their_status_allows_and_sync_once,
                corrections_apply_at_the_version_read,
                lists_page_newest_first_by_status_employee_and_category,
                random_expenses_sum_exactly_per_currency,
            ]
        );
        $crate::conformance_module!(
            $setup,
            marketplace,
            [
                concurrent_ratings_keep_the_aggregate_exact,
                templates_are_unique_by_name_sorted_searched_and_deleted_whole,
                unrated_templates_sort_last_in_both_directions,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
            ]
        );
        $crate::conformance_module!(
            $setup,
            provenance,
            [
                a_chain_is_saved_whole_replaced_whole_and_deleted_whole,
                verify_names_the_first_altered_or_removed_record,
                records_are_listed_by_sequence_not_by_timestamp,
                concurrent_saves_of_one_debate_leave_one_chain_and_no_orphans,
                tenants_never_see_or_change_each_others_chains,
            ]
        );
        $crate::conformance_module!(
            $setup,
            job_queue,
            [
                jobs_are_claimed_by_priority_then_in_order,
                scheduled_jobs_wait_for_their_time,
                a_stale_worker_changes_nothing,
                a_failing_job_retries_with_growing_delays_then_dies,
                a_lapsed_lease_is_swept_and_counts_as_an_attempt,
                release_gives_a_job_back_without_counting_the_attempt,
                cancel_stops_waiting_and_running_jobs,
                a_dedupe_key_holds_while_its_job_is_unfinished,
                one_tenants_backlog_never_starves_another,
                concurrent_claimers_take_a_job_once,
                workers_abandoned_mid_job_lose_nothing_and_run_nothing_twice,
                lists_counts_and_retention,
                bad_input_is_refused_and_nothing_is_written,
                a_heartbeat_that_beats_the_sweep_keeps_the_job,
                a_claim_sees_every_due_job,
                concurrent_enqueues_of_a_tenant_take_distinct_places,
                a_batch_is_enqueued_in_order_and_whole,
            ]
        );
        $crate::conformance_module!(
            $setup,
            password_reset,
            [
                a_token_is_validated_then_consumed_once,
                tokens_expire,
                the_rate_limit_counts_issued_tokens_not_surviving_rows,
                concurrent_consumes_of_one_token_succeed_once,
                bad_input_is_refused,
            ]
        );
        $crate::conformance_module!(
            $setup,
            token_blacklist,
            [revocations_last_until_the_token_expires, a_large_blacklist_forgets_no_live_revocation, bad_input_is_refused,]
        );
        $crate::conformance_module!(
            $setup,
            share,
            [
                a_debate_link_opens_counts_views_and_survives_resaves,
                private_and_expired_links_do_not_open,
                a_view_once_link_opens_once_under_contention,
                receipt_links_count_accesses_expire_and_are_revoked,
                bad_input_is_refused,
            ]
        );
        $crate::conformance_module!(
            $setup,
            impersonation,
            [
                a_session_starts_acts_and_ends_once_with_every_step_audited,
                sessions_time_out_and_are_swept,
                retention_deletes_old_sessions_and_audits_itself,
                concurrent_ends_end_a_session_once,
                bad_input_is_refused,
            ]
        );
        $crate::conformance_module!(
            $setup,
            finding_workflow,
            [
                a_finding_moves_through_triage_with_its_history,
                every_forbidden_transition_is_a_conflict_and_changes_nothing,
                assignments_due_dates_and_the_overdue_list,
                concurrent_changes_lose_nothing,
                links_and_parents_name_existing_findings_without_cycles,
                a_full_history_drops_its_oldest_events,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
                tenants_never_see_or_change_each_others_findings,
            ]
        );
        $crate::conformance_module!(
            $setup,
            federation,
            [
                a_region_round_trips_and_a_resave_keeps_its_counters,
                every_list_is_scoped_to_one_workspace,
                concurrent_sync_reports_all_count,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
                tenants_never_see_or_change_each_others_regions,
            ]
        );
        $crate::conformance_module!(
            $setup,
            pipeline,
            [
                the_status_is_derived_from_the_stages,
                a_resave_replaces_the_result_and_lists_go_newest_first,
                a_result_altered_behind_the_store_is_refused,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
                tenants_never_see_or_change_each_others_results,
            ]
        );
        $crate::conformance_module!(
            $setup,
            playground,
            [
                results_expire_list_newest_first_and_a_resave_renews_them,
                the_cache_index_finds_debates_and_forgets_gone_ones,
                a_resave_renews_the_debates_cache_entries,
                concurrent_cache_hits_are_all_counted,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
                tenants_never_see_each_others_results,
            ]
        );
        $crate::conformance_module!(
            $setup,
            debate_archive,
            [
                a_debate_is_archived_under_a_slug_and_resaved_in_place,
                concurrent_saves_of_one_title_get_distinct_slugs,
                private_debates_open_only_for_their_owner,
                ownership_is_checked_on_every_change,
                search_and_lists_find_a_tenants_debates,
                bad_input_is_refused_naming_the_field_and_writes_nothing,
            ]
        );
    };
}

/// One module of [`conformance_tests!`].
#[macro_export]
macro_rules! conformance_module {
    ($setup:path, $module:ident, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let subject = $setup().await;
                    $crate::$module::$case(&subject).await;
                }
            )*
        }
    };
}
