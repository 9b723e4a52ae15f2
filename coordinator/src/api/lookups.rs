//! The lookups, each for the parties only: who may read what is decided here, after the
//! request's signature named its account ([`super::Authenticator`]).
//!
//! | lookup | who may read it |
//! |---|---|
//! | an account | itself; a doctor's or registrar's by any account (a directory of professional keys); a patient's by an account holding an active grant from it |
//! | a record | its owner, its uploader, a holder of an active, unexpired grant from its owner for it (`?grant=ID` names the grant) |
//! | a grant | its patient and its grantee |
//! | an account's records, grants and access log | the account itself |
//!
//! A signed request for something its account may not read gets the 404 a request for
//! something that does not exist gets.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use pulse_circuits::field::fr_to_decimal;
use pulse_circuits::leaf::GrantLeaf;
use pulse_circuits::state::{Link, StateView, TreeKind};
use pulse_circuits::tx::Role;
use serde_json::{Value, json};

use super::{LookupState, error};

/// Items per page of a list.
pub const PAGE: usize = 50;

/// What a lookup's query may hold.
#[derive(Debug, serde::Deserialize)]
pub struct LookupQuery {
    /// `committed` (default) or `latest`.
    view: Option<String>,
    /// For a record: the grant the reader holds.
    grant: Option<u64>,
    /// For a list: the last id of the previous page.
    after: Option<u64>,
}

type Refusal = Box<Response>;

fn internal(e: impl std::fmt::Display) -> Refusal {
    Box::new(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn not_found(what: &str, id: u64, name: &str, caller: u64) -> Refusal {
    Box::new(error(
        StatusCode::NOT_FOUND,
        format!("no {what} {id} that account {caller} may read in the {name} state"),
    ))
}

/// A signed lookup, extracted before its handler runs: the account that signed it, the
/// view it answers from (and that view's name), and its query. Rejected with the 401 of
/// [`super::Authenticator::check`], or a 400 for a malformed query.
pub(super) struct Signed {
    caller: u64,
    view: Arc<StateView>,
    name: &'static str,
    q: LookupQuery,
}

impl FromRequestParts<LookupState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &LookupState) -> Result<Self, Response> {
        let Query(q) = Query::<LookupQuery>::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        let path = parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |p| p.as_str());
        let caller = s
            .auth
            .check(&s.state, &parts.headers, parts.method.as_str(), path)
            .map_err(|r| *r)?;
        let (view, name) = view_for(s, &q).map_err(|r| *r)?;
        Ok(Self {
            caller,
            view,
            name,
            q,
        })
    }
}

fn view_for(s: &LookupState, q: &LookupQuery) -> Result<(Arc<StateView>, &'static str), Refusal> {
    match q.view.as_deref() {
        None | Some("committed") => {
            let committed = match s.committed.read() {
                Ok(g) => g.clone(),
                Err(p) => p.into_inner().clone(),
            };
            match committed {
                Some(v) => Ok((v, "committed")),
                // Not known yet in this run (batches from before a restart are still on
                // their way to L1): the latest state, said so.
                None => Ok((Arc::new(s.state.view().map_err(internal)?), "latest")),
            }
        }
        Some("latest") => Ok((Arc::new(s.state.view().map_err(internal)?), "latest")),
        Some(other) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("unknown view {other:?}: use view=committed (the default) or view=latest"),
        ))),
    }
}

fn proof_json(view: &StateView, tree: TreeKind, id: u64) -> Result<Value, Refusal> {
    let (leaf, proof, roots) = view
        .proof(tree, id)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("{e}"))))?;
    Ok(json!({
        "leaf_hash": fr_to_decimal(&leaf),
        "proof": proof,
        "roots": roots,
        "state_root": fr_to_decimal(&roots.state_root()),
    }))
}

/// The active, unexpired grants from `patient` that `caller` holds.
fn grants_from(
    view: &StateView,
    patient: u64,
    caller: u64,
) -> Result<Vec<(u64, GrantLeaf)>, Refusal> {
    let now = crate::sequencer::now_ms() / 1000;
    let mut out = Vec::new();
    for gid in view.linked(caller, Link::Received).map_err(internal)? {
        if let Some(g) = view.grant(gid).map_err(internal)?
            && g.patient == patient
            && g.grantee == caller
            && g.active
            && g.expires_at > now
        {
            out.push((gid, g));
        }
    }
    Ok(out)
}

/// Whether `caller` may read account `id`'s leaf (see the module's table).
///
/// # Errors
/// A storage failure, as the response to send.
pub fn may_read_account(view: &StateView, caller: u64, id: u64) -> Result<bool, Box<Response>> {
    if caller == id {
        return Ok(true);
    }
    let Some(leaf) = view.account(id).map_err(internal)? else {
        return Ok(false);
    };
    if leaf.role != Role::Patient.code() {
        return Ok(true);
    }
    Ok(!grants_from(view, id, caller)?.is_empty())
}

pub(super) async fn account(Path(id): Path<u64>, l: Signed) -> Response {
    let run = || -> Result<Response, Refusal> {
        if !may_read_account(&l.view, l.caller, id)? {
            return Err(not_found("account", id, l.name, l.caller));
        }
        let leaf = l
            .view
            .account(id)
            .map_err(internal)?
            .ok_or_else(|| not_found("account", id, l.name, l.caller))?;
        let mut v = proof_json(&l.view, TreeKind::Accounts, id)?;
        v["account"] = json!(leaf);
        v["id"] = json!(id);
        v["view"] = json!(l.name);
        Ok(Json(v).into_response())
    };
    run().unwrap_or_else(|r| *r)
}

fn record_json(view: &StateView, id: u64) -> Result<Option<Value>, Refusal> {
    let Some(r) = view.record(id).map_err(internal)? else {
        return Ok(None);
    };
    let mut v = proof_json(view, TreeKind::Records, id)?;
    v["record"] = json!(r.leaf);
    v["cid"] = json!(r.cid);
    v["id"] = json!(id);
    Ok(Some(v))
}

fn grant_json(view: &StateView, id: u64) -> Result<Option<Value>, Refusal> {
    let Some(g) = view.grant(id).map_err(internal)? else {
        return Ok(None);
    };
    let mut v = proof_json(view, TreeKind::Grants, id)?;
    v["grant"] = json!(g);
    v["id"] = json!(id);
    Ok(Some(v))
}

pub(super) async fn record(Path(id): Path<u64>, l: Signed) -> Response {
    let run = || -> Result<Response, Refusal> {
        let refused = || not_found("record", id, l.name, l.caller);
        let r = l.view.record(id).map_err(internal)?.ok_or_else(refused)?;
        let allowed = l.caller == r.leaf.owner
            || l.caller == r.leaf.uploader
            || grants_from(&l.view, r.leaf.owner, l.caller)?
                .iter()
                .any(|(gid, g)| {
                    l.q.grant.is_none_or(|want| want == *gid) && (g.scope == 0 || g.scope == id)
                });
        if !allowed {
            return Err(refused());
        }
        let mut v = record_json(&l.view, id)?.ok_or_else(refused)?;
        v["view"] = json!(l.name);
        Ok(Json(v).into_response())
    };
    run().unwrap_or_else(|r| *r)
}

pub(super) async fn grant(Path(id): Path<u64>, l: Signed) -> Response {
    let run = || -> Result<Response, Refusal> {
        let refused = || not_found("grant", id, l.name, l.caller);
        let g = l.view.grant(id).map_err(internal)?.ok_or_else(refused)?;
        if l.caller != g.patient && l.caller != g.grantee {
            return Err(refused());
        }
        let mut v = grant_json(&l.view, id)?.ok_or_else(refused)?;
        v["view"] = json!(l.name);
        Ok(Json(v).into_response())
    };
    run().unwrap_or_else(|r| *r)
}

/// One page of `ids` (sorted) after `after`, and the cursor of the next page.
fn page(mut ids: Vec<u64>, after: Option<u64>) -> (Vec<u64>, Option<u64>) {
    ids.sort_unstable();
    ids.dedup();
    let start = after.map_or(0, |a| ids.partition_point(|&x| x <= a));
    let rest = &ids[start..];
    let taken: Vec<u64> = rest.iter().take(PAGE).copied().collect();
    let next = (rest.len() > PAGE).then(|| taken.last().copied()).flatten();
    (taken, next)
}

/// Refuses a list of account `id`'s to any other account.
fn own_list(l: &Signed, id: u64, what: &str) -> Result<(), Refusal> {
    if l.caller != id {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            format!(
                "account {} may not read account {id}'s {what}: only account {id} may",
                l.caller
            ),
        )));
    }
    Ok(())
}

/// One page of the records or grants linked to account `id` by either of `links`, each
/// with its proof (`item`), under the key `list`: for the account itself only.
fn linked_page(
    l: &Signed,
    id: u64,
    list: &'static str,
    links: [Link; 2],
    item: fn(&StateView, u64) -> Result<Option<Value>, Refusal>,
) -> Result<Response, Refusal> {
    own_list(l, id, list)?;
    let mut ids = Vec::new();
    for link in links {
        ids.extend(l.view.linked(id, link).map_err(internal)?);
    }
    let (ids, next) = page(ids, l.q.after);
    let mut items = Vec::with_capacity(ids.len());
    for i in ids {
        if let Some(v) = item(&l.view, i)? {
            items.push(v);
        }
    }
    Ok(
        Json(json!({"account": id, "view": l.name, list: items, "next_after": next}))
            .into_response(),
    )
}

pub(super) async fn account_records(Path(id): Path<u64>, l: Signed) -> Response {
    linked_page(&l, id, "records", [Link::Owns, Link::Uploaded], record_json).unwrap_or_else(|r| *r)
}

pub(super) async fn account_grants(Path(id): Path<u64>, l: Signed) -> Response {
    linked_page(
        &l,
        id,
        "grants",
        [Link::Granted, Link::Received],
        grant_json,
    )
    .unwrap_or_else(|r| *r)
}

pub(super) async fn account_access(Path(id): Path<u64>, l: Signed) -> Response {
    let run = || -> Result<Response, Refusal> {
        own_list(&l, id, "access log")?;
        let all = l.view.access_log(id).map_err(internal)?;
        let start =
            l.q.after
                .map_or(0, |a| usize::try_from(a).unwrap_or(usize::MAX));
        let items: Vec<_> = all.iter().skip(start).take(PAGE).collect();
        let next = (all.len() > start.saturating_add(PAGE)).then(|| (start + PAGE) as u64);
        Ok(
            Json(json!({"account": id, "view": l.name, "access": items, "next_after": next}))
                .into_response(),
        )
    };
    run().unwrap_or_else(|r| *r)
}
