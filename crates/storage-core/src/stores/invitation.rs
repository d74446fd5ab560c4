//! Invitations to join an organisation: a bearer token sent by mail, stored only as a digest,
//! accepted once, before it expires.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::limits::add;
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::organization::Role;
use crate::stores::user::normalize_email;
use crate::table::Table;
use crate::token::{generate_token, hash_token};
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// What an invitation token looks like: `inv_` and 43 random characters.
pub const INVITATION_TOKEN_PREFIX: &str = "inv_";
/// How long an invitation is valid unless the caller says otherwise.
pub const DEFAULT_INVITATION_TTL: TimeDelta = TimeDelta::days(7);

/// Where an invitation stands. An invitation still pending after its expiry reads as
/// [`InvitationStatus::Expired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    /// Waiting for the invitee.
    Pending,
    /// Accepted (once).
    Accepted,
    /// Withdrawn by the organisation.
    Revoked,
    /// Not accepted in time.
    Expired,
}

impl InvitationStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// An invitation of one email address into one organisation (the tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The organisation.
    pub tenant: TenantId,
    /// A UUID the store assigns.
    pub id: String,
    /// The invitee's email, lower-cased.
    pub email: String,
    /// The role the invitee gets.
    pub role: Role,
    /// The SHA-256 digest of the token; the token itself is returned once, at creation.
    pub token_digest: String,
    /// Who invited.
    pub invited_by: String,
    /// Where it stands (as stored; see [`Invitation::status_at`]).
    pub status: InvitationStatus,
    /// When it stops being acceptable.
    pub expires_at: DateTime<Utc>,
    /// When it was accepted.
    pub accepted_at: Option<DateTime<Utc>>,
    /// Who accepted it.
    pub accepted_by: Option<String>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When created.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Invitation {
    /// The status at `now`: a pending invitation past its expiry is expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> InvitationStatus {
        match self.status {
            InvitationStatus::Pending if now >= self.expires_at => InvitationStatus::Expired,
            status => status,
        }
    }
}

/// A new invitation and its token, which is shown only here.
#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    /// The token to send to the invitee.
    pub token: Secret<String>,
    /// The invitation.
    pub invitation: Invitation,
}

impl Document for Invitation {
    const TABLE: TableDef = TableDef {
        name: "org_invitations",
        entity: "invitation",
        id_field: "invitation_id",
        indexes: &[
            IndexSpec::text("email"),
            IndexSpec::text("token_digest").global(),
            IndexSpec::text("status"),
            IndexSpec::time("expires_at"),
        ],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(&self.email)),
            Some(IndexValue::from(&self.token_digest)),
            Some(IndexValue::from(self.status.as_str())),
            Some(IndexValue::Time(self.expires_at)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("invitation_id", &self.id)?;
        normalize_email("email", &self.email)?;
        validate_id("invited_by", &self.invited_by)?;
        if self.status == InvitationStatus::Expired {
            return Err(StorageError::invalid("status", "expiry is not stored; it follows from expires_at"));
        }
        if let Some(by) = &self.accepted_by {
            validate_id("accepted_by", by)?;
        }
        Ok(())
    }
}

/// Invitations into organisations.
#[async_trait]
pub trait InvitationStore: Send + Sync + fmt::Debug {
    /// Invites `email` into the organisation `tenant` as `role`, valid for `ttl` (7 days by
    /// default); the token is returned once and stored only as a digest.
    async fn create_invitation(
        &self,
        tenant: &TenantId,
        email: &str,
        role: Role,
        invited_by: &str,
        ttl: Option<TimeDelta>,
    ) -> Result<IssuedInvitation>;
    /// The invitation with this id.
    async fn get_invitation_by_id(&self, tenant: &TenantId, id: &str) -> Result<Option<Invitation>>;
    /// The invitation this token belongs to, in whichever organisation.
    async fn get_invitation_by_token(&self, token: &str) -> Result<Option<Invitation>>;
    /// The organisation's pending invitation of `email` that expires last.
    async fn get_invitation_by_email(&self, tenant: &TenantId, email: &str) -> Result<Option<Invitation>>;
    /// One page of the organisation's invitations, by id.
    async fn get_invitations_for_org(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Invitation>>;
    /// One page of the pending invitations of `email`, across organisations.
    async fn get_pending_invitations_by_email(&self, email: &str, page: &PageRequest) -> Result<Page<Invitation>>;
    /// Accepts the invitation of this token for `user_id`: once, while pending and unexpired;
    /// `Conflict` otherwise, `NotFound` for an unknown token. Joining the organisation is the
    /// caller's next step ([`crate::OrganizationStore::add_member`] with the invitation's role).
    async fn accept_invitation(&self, token: &str, user_id: &str) -> Result<Invitation>;
    /// Withdraws a pending invitation; `Conflict` if it is no longer pending.
    async fn revoke_invitation(&self, tenant: &TenantId, id: &str) -> Result<Invitation>;
    /// Deletes an invitation; whether it existed.
    async fn delete_invitation(&self, tenant: &TenantId, id: &str) -> Result<bool>;
    /// Deletes every expired pending invitation, in every organisation; how many.
    async fn cleanup_expired_invitations(&self) -> Result<u64>;
}

/// [`InvitationStore`] on any backend.
pub struct Invitations<B: ?Sized = dyn Engine> {
    invitations: Table<Invitation>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Invitations { invitations });

impl<B: ?Sized> Invitations<B> {
    /// Pending and not expired at `now`.
    fn pending(&self) -> Filter {
        Filter::all().eq("status", InvitationStatus::Pending.as_str()).gt("expires_at", self.invitations.now())
    }

    /// Moves a pending, unexpired invitation to `to`.
    async fn settle(&self, tenant: &TenantId, id: &str, to: InvitationStatus, by: Option<&str>) -> Result<Invitation> {
        let now = self.invitations.now();
        self.invitations
            .patch(tenant, id, |invitation| match invitation.status_at(now) {
                InvitationStatus::Pending => {
                    invitation.status = to;
                    if to == InvitationStatus::Accepted {
                        invitation.accepted_at = Some(now);
                        invitation.accepted_by = by.map(str::to_owned);
                    }
                    Ok(())
                }
                status => Err(StorageError::conflict(Invitation::TABLE.entity, id, format!("the invitation is {}", status.as_str()))),
            })
            .await
    }
}

#[async_trait]
impl<B: ?Sized> InvitationStore for Invitations<B> {
    async fn create_invitation(
        &self,
        tenant: &TenantId,
        email: &str,
        role: Role,
        invited_by: &str,
        ttl: Option<TimeDelta>,
    ) -> Result<IssuedInvitation> {
        let ttl = ttl.unwrap_or(DEFAULT_INVITATION_TTL);
        if ttl <= TimeDelta::zero() {
            return Err(StorageError::invalid("ttl", "must be positive"));
        }
        let token = Secret::new(format!("{INVITATION_TOKEN_PREFIX}{}", generate_token()?));
        let invitation = Invitation {
            tenant: tenant.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            email: normalize_email("email", email)?,
            role,
            token_digest: hash_token(token.expose()),
            invited_by: invited_by.to_owned(),
            status: InvitationStatus::Pending,
            expires_at: add("ttl", self.invitations.now(), ttl)?,
            accepted_at: None,
            accepted_by: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let invitation = self.invitations.insert(&invitation).await?;
        Ok(IssuedInvitation { token, invitation })
    }

    async fn get_invitation_by_id(&self, tenant: &TenantId, id: &str) -> Result<Option<Invitation>> {
        self.invitations.get(tenant, id).await
    }

    async fn get_invitation_by_token(&self, token: &str) -> Result<Option<Invitation>> {
        validate_id("token", token)?;
        self.invitations.find_global("token_digest", hash_token(token)).await
    }

    async fn get_invitation_by_email(&self, tenant: &TenantId, email: &str) -> Result<Option<Invitation>> {
        let filter = self.pending().eq("email", normalize_email("email", email)?);
        let query = Query::new(filter).order(Order::desc("expires_at"));
        Ok(self.invitations.list(Scope::Tenant(tenant), query, &PageRequest::first(1)).await?.items.into_iter().next())
    }

    async fn get_invitations_for_org(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Invitation>> {
        self.invitations.list(Scope::Tenant(tenant), Query::new(Filter::all()), page).await
    }

    async fn get_pending_invitations_by_email(&self, email: &str, page: &PageRequest) -> Result<Page<Invitation>> {
        let filter = self.pending().eq("email", normalize_email("email", email)?);
        self.invitations.list(Scope::AllTenants, Query::new(filter), page).await
    }

    async fn accept_invitation(&self, token: &str, user_id: &str) -> Result<Invitation> {
        validate_id("token", token)?;
        validate_id("user_id", user_id)?;
        let Some((tenant, id)) = self.invitations.locate("token_digest", hash_token(token)).await? else {
            return Err(StorageError::not_found(Invitation::TABLE.entity, "(token)"));
        };
        self.settle(&tenant, &id, InvitationStatus::Accepted, Some(user_id)).await
    }

    async fn revoke_invitation(&self, tenant: &TenantId, id: &str) -> Result<Invitation> {
        self.settle(tenant, id, InvitationStatus::Revoked, None).await
    }

    async fn delete_invitation(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        self.invitations.delete(tenant, id).await
    }

    async fn cleanup_expired_invitations(&self) -> Result<u64> {
        let expired = Filter::all().eq("status", InvitationStatus::Pending.as_str()).le("expires_at", self.invitations.now());
        self.invitations.delete_where(Scope::AllTenants, expired).await
    }
}
