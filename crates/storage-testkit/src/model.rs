//! Model-based property test of users and organisations: random sequences of sign-ups,
//! look-ups, failed sign-ins, deletions, organisation creations, membership changes and usage,
//! run on the backend under test and on a fresh memory backend (the reference model) sharing
//! its clock. Every step must give the same outcome on both, and the final state must match.

use crate::Subject;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use storage_core::{
    LockoutInfo, NewUser, OrganizationChanges, OrganizationStore, Organizations, PageRequest, Result, Role, StorageError, Store,
    UsageOutcome, UserStore, Users,
};
use storage_memory::MemoryBackend;

/// Sequences per run, and the longest sequence.
const CASES: u32 = 40;
const MAX_STEPS: usize = 80;
/// Users and organisation names a sequence draws from; two names alike, for slug suffixes.
const USERS: usize = 4;
const ORG_NAMES: [&str; 3] = ["Acme", "Acme", "Beta Labs"];
/// Outcomes every run must reach, and how a step's outcome shows each.
const CLASSES: &[(&str, &str)] = &[
    ("a refused duplicate or last owner", "conflict"),
    ("an unknown user or organisation", "not found"),
    ("a lockout", "just locked true"),
    ("usage refused at the limit", "refused at"),
    ("a second organisation slug", "-2 owned"),
    ("a cycle reset once", "true, then false"),
];
/// An id nobody holds.
const NOBODY: &str = "00000000-0000-4000-8000-000000000000";

#[derive(Debug, Clone)]
enum Step {
    SignUp { user: usize, shout: bool },
    FindByEmail { user: usize, shout: bool },
    FailSignIn { user: usize },
    SignedIn { user: usize },
    BumpTokenVersion { user: usize },
    DeleteUser { user: usize },
    CreateOrg { org: usize, owner: usize },
    AddMember { org: usize, user: usize, role: Role },
    SetRole { org: usize, user: usize, role: Role },
    RemoveMember { org: usize, user: usize },
    SetLimit { org: usize, limit: Option<u64> },
    CountUsage { org: usize, n: u64 },
    NewCycle { org: usize },
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Owner), Just(Role::Admin), Just(Role::Member), Just(Role::Viewer)]
}

fn step() -> impl Strategy<Value = Step> {
    let user = 0..USERS;
    let org = 0..ORG_NAMES.len();
    prop_oneof![
        3 => (user.clone(), any::<bool>()).prop_map(|(user, shout)| Step::SignUp { user, shout }),
        1 => (user.clone(), any::<bool>()).prop_map(|(user, shout)| Step::FindByEmail { user, shout }),
        6 => (0..2usize).prop_map(|user| Step::FailSignIn { user }),
        1 => user.clone().prop_map(|user| Step::SignedIn { user }),
        1 => user.clone().prop_map(|user| Step::BumpTokenVersion { user }),
        1 => user.clone().prop_map(|user| Step::DeleteUser { user }),
        2 => (org.clone(), user.clone()).prop_map(|(org, owner)| Step::CreateOrg { org, owner }),
        3 => (org.clone(), user.clone(), role()).prop_map(|(org, user, role)| Step::AddMember { org, user, role }),
        2 => (org.clone(), user.clone(), role()).prop_map(|(org, user, role)| Step::SetRole { org, user, role }),
        2 => (org.clone(), user.clone()).prop_map(|(org, user)| Step::RemoveMember { org, user }),
        3 => (org.clone(), proptest::option::weighted(0.8, 0u64..4)).prop_map(|(org, limit)| Step::SetLimit { org, limit }),
        4 => (org.clone(), 0u64..5).prop_map(|(org, n)| Step::CountUsage { org, n }),
        1 => org.prop_map(|org| Step::NewCycle { org }),
    ]
}

/// One backend's stores and the ids it gave the sequence's users and organisations.
struct Side {
    users: Users,
    orgs: Organizations,
    user_ids: Vec<Option<String>>,
    org_ids: Vec<Option<String>>,
}

impl Side {
    fn on(engine: &dyn storage_core::Engine) -> Self {
        Self {
            users: Users::on(engine),
            orgs: Organizations::on(engine),
            user_ids: vec![None; USERS],
            org_ids: vec![None; ORG_NAMES.len()],
        }
    }

    fn user(&self, i: usize) -> &str {
        self.user_ids[i].as_deref().unwrap_or(NOBODY)
    }

    fn org(&self, i: usize) -> &str {
        self.org_ids[i].as_deref().unwrap_or(NOBODY)
    }

    /// A user's place, in the sequence's terms: which of its organisations, as what.
    fn membership(&self, org_id: Option<&str>, role: Role) -> String {
        match org_id {
            None => "none".to_owned(),
            Some(id) => match self.org_ids.iter().position(|o| o.as_deref() == Some(id)) {
                Some(i) => format!("org{i} as {}", role.as_str()),
                None => format!("an unknown organisation as {}", role.as_str()),
            },
        }
    }

    /// Runs one step; the outcome in terms both backends must agree on (no ids, no versions).
    async fn run(&mut self, case: u64, step: &Step) -> String {
        let email = |user: usize, shout: bool| {
            let email = format!("model{case}-user{user}@model.example");
            if shout { email.to_uppercase() } else { email }
        };
        match *step {
            Step::SignUp { user, shout } => match self.users.create_user(NewUser::new(email(user, shout), format!("User {user}"))).await {
                Ok(created) => {
                    self.user_ids[user] = Some(created.id);
                    format!("created {}", created.email)
                }
                Err(e) => kind(&e),
            },
            Step::FindByEmail { user, shout } => outcome(self.users.get_user_by_email(&email(user, shout)).await.map(|found| {
                found
                    .map(|u| (u.email, Some(u.id.as_str()) == self.user_ids[user].as_deref(), self.membership(u.org_id.as_deref(), u.role)))
            })),
            Step::FailSignIn { user } => outcome(self.users.record_failed_login(&email(user, false)).await.map(|info| info.map(lockout))),
            Step::SignedIn { user } => outcome(self.users.reset_failed_login_attempts(&email(user, false)).await),
            Step::BumpTokenVersion { user } => outcome(self.users.increment_token_version(self.user(user)).await),
            Step::DeleteUser { user } => outcome(self.users.delete_user(self.user(user)).await),
            Step::CreateOrg { org, owner } => {
                let name = format!("{} {case}", ORG_NAMES[org]);
                match self.orgs.create_organization(&name, self.user(owner), None, "free").await {
                    Ok(created) => {
                        self.org_ids[org] = Some(created.id);
                        format!("created {} owned by user{owner}", created.slug)
                    }
                    Err(e) => kind(&e),
                }
            }
            Step::AddMember { org, user, role } => self.member_outcome(self.orgs.add_member(self.org(org), self.user(user), role).await),
            Step::SetRole { org, user, role } => self.member_outcome(self.orgs.set_member_role(self.org(org), self.user(user), role).await),
            Step::RemoveMember { org, user } => self.member_outcome(self.orgs.remove_member(self.org(org), self.user(user)).await),
            Step::SetLimit { org, limit } => {
                let changes = OrganizationChanges { debate_limit: Some(limit), ..OrganizationChanges::default() };
                outcome(self.orgs.update_organization(self.org(org), &changes).await.map(|o| (o.debate_limit, o.debates_used_this_month)))
            }
            Step::CountUsage { org, n } => outcome(self.orgs.increment_usage(self.org(org), n).await.map(|u| match u {
                UsageOutcome::Recorded(total) => format!("recorded, {total} used"),
                UsageOutcome::LimitReached { used, limit } => format!("refused at {used} of {limit}"),
            })),
            Step::NewCycle { org } => {
                let cycle = match self.orgs.get_organization_by_id(self.org(org)).await {
                    Ok(Some(found)) => found.billing_cycle_start + chrono::TimeDelta::days(30),
                    other => return outcome(other.map(|_| "no organisation")),
                };
                let first = outcome(self.orgs.reset_org_usage(self.org(org), cycle).await);
                let again = outcome(self.orgs.reset_org_usage(self.org(org), cycle).await);
                format!("{first}, then {again}")
            }
        }
    }

    fn member_outcome(&self, result: Result<storage_core::User>) -> String {
        outcome(result.map(|u| self.membership(u.org_id.as_deref(), u.role)))
    }

    /// Everything the sequence can see at its end.
    async fn state(&self) -> Vec<String> {
        let mut state = Vec::new();
        for (i, id) in self.user_ids.iter().enumerate() {
            let Some(id) = id else { continue };
            let user = self.users.get_user_by_id(id).await.expect("user");
            state.push(format!(
                "user{i}: {:?}",
                user.map(|u| (u.email.clone(), self.membership(u.org_id.as_deref(), u.role), u.token_version, u.failed_login_attempts))
            ));
        }
        for (i, id) in self.org_ids.iter().enumerate() {
            let Some(id) = id else { continue };
            let org = self.orgs.get_organization_by_id(id).await.expect("organisation");
            let mut members: Vec<String> = self
                .orgs
                .get_org_members(id, &PageRequest::first(100))
                .await
                .expect("members")
                .items
                .into_iter()
                .map(|u| {
                    let who = self
                        .user_ids
                        .iter()
                        .position(|x| x.as_deref() == Some(u.id.as_str()))
                        .map_or("someone else".to_owned(), |n| format!("user{n}"));
                    format!("{who} as {}", u.role.as_str())
                })
                .collect();
            members.sort();
            state.push(format!(
                "org{i}: {:?} members {members:?}",
                org.map(|o| (o.slug, o.owner_count, o.debates_used_this_month, o.debate_limit))
            ));
        }
        state
    }
}

fn lockout(info: LockoutInfo) -> String {
    format!("{} failures, locked {}, just locked {}", info.failed_attempts, info.locked, info.just_locked)
}

fn kind(error: &StorageError) -> String {
    let kind = match error {
        StorageError::NotFound { .. } => "not found",
        StorageError::Conflict { .. } => "conflict",
        StorageError::VersionMismatch { .. } => "version mismatch",
        StorageError::InvalidInput { .. } => "invalid input",
        other => panic!("a step failed for a reason no model predicts: {other:?}"),
    };
    kind.to_owned()
}

fn outcome<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(e) => kind(&e),
    }
}

/// Random sequences of user and organisation operations give the same outcome, step by step,
/// on this backend as on the memory model, and leave the same state.
pub async fn user_and_organisation_operations_match_the_memory_model(s: &Subject) {
    let engine = Arc::clone(&s.engine);
    let handle = tokio::runtime::Handle::current();
    let cases = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&cases);
    // Which outcomes the sequences reached: the run must meet the rules it claims to check.
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let seen_in_cases = Arc::clone(&seen);
    let subject_clock = s.clock.clone();
    tokio::task::spawn_blocking(move || {
        // A fixed seed: every run (and every backend) replays the same sequences, so a failure
        // reproduces and the coverage below holds by construction, not by luck.
        let config = Config { cases: CASES, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let outcome = runner.run(&proptest::collection::vec(step(), 8..MAX_STEPS), |steps| {
            // Every case (and every shrink) names its users and organisations afresh: the backend
            // under test keeps what earlier cases wrote, the model starts empty.
            let case = counted.fetch_add(1, Ordering::Relaxed);
            let model_engine = Arc::new(MemoryBackend::with_clock(subject_clock.shared()));
            let (mut ours, mut model) = (Side::on(engine.as_ref()), Side::on(model_engine.as_ref()));
            handle.block_on(async {
                for (n, step) in steps.iter().enumerate() {
                    let (got, expected) = (ours.run(case, step).await, model.run(case, step).await);
                    for (class, marker) in CLASSES {
                        if got.contains(marker) {
                            seen_in_cases.lock().expect("tally").insert(*class);
                        }
                    }
                    prop_assert_eq!(got, expected, "step {} of {:?}", n, steps);
                }
                prop_assert_eq!(ours.state().await, model.state().await, "final state after {:?}", steps);
                Ok(())
            })
        });
        if let Err(failure) = outcome {
            panic!("{failure}");
        }
    })
    .await
    .expect("model runner");
    assert!(cases.load(Ordering::Relaxed) >= u64::from(CASES), "every case ran");
    let seen = seen.lock().expect("tally").clone();
    let missed: Vec<&str> = CLASSES.iter().map(|(class, _)| *class).filter(|class| !seen.contains(class)).collect();
    assert!(missed.is_empty(), "no sequence reached {missed:?}");
}
