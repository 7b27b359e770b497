//! References on the command line → ids on the wire.
//!
//! The API takes canonical UUIDs only. For people, the CLI also accepts:
//! - an agent's slug wherever an agent is expected (`--agent git`);
//! - an id prefix of at least 4 characters (as the tables and the board
//!   show 8) for agents, capabilities, tasks and executions;
//! - `AGENT/KEY` (`git/log`) or a key unique across agents for a capability.
//!
//! A full UUID is used as it is (lowercased, hyphenated) without a call;
//! anything else costs one listing. No match, or several, is a usage error.

use std::future::Future;

use amon_proto::v1::{
    Agent, Capability, GetAgentRequest, ListAgentsRequest, ListCapabilitiesRequest,
    ListExecutionsRequest, ListTasksRequest,
};

use tonic::Status;

use crate::{
    client::{Ctx, PAGE_SIZE, UsageError, all_pages, usage},
    table::{AgentNames, SHORT_ID},
};

/// Shortest id prefix accepted.
pub const MIN_PREFIX: usize = 4;

/// The canonical form of a UUID, or `None` when `text` is not one.
pub fn canonical_uuid(text: &str) -> Option<String> {
    uuid::Uuid::parse_str(text.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// Whether `text` could be the start of a UUID.
fn looks_like_prefix(text: &str) -> bool {
    text.len() >= MIN_PREFIX && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The one id among `ids` that starts with `prefix`.
pub fn match_prefix<'a>(
    what: &str,
    prefix: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<String, UsageError> {
    if !looks_like_prefix(prefix) {
        return Err(UsageError(format!(
            "'{prefix}' is not {} {what} id (give the id, or at least its first {MIN_PREFIX} characters)",
            if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            }
        )));
    }
    let prefix = prefix.to_ascii_lowercase();
    let mut matches: Vec<&str> = ids
        .into_iter()
        .filter(|id| id.to_ascii_lowercase().starts_with(&prefix))
        .collect();
    matches.sort_unstable();
    matches.dedup();
    match matches.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(UsageError(format!("no {what} id starts with '{prefix}'"))),
        many => Err(UsageError(format!(
            "{what} id prefix '{prefix}' is ambiguous: {}",
            many.iter()
                .map(|id| id.chars().take(SHORT_ID + 4).collect::<String>() + "…")
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Every agent.
pub async fn all_agents(ctx: &Ctx) -> anyhow::Result<Vec<Agent>> {
    list_agents(ctx, None, 0).await
}

/// Every agent with this `is_active` (when given) and kind (when not 0).
pub async fn list_agents(
    ctx: &Ctx,
    is_active: Option<bool>,
    kind: i32,
) -> anyhow::Result<Vec<Agent>> {
    let client = ctx.agents();
    Ok(all_pages(|page_token| {
        let mut client = client.clone();
        async move {
            let r = client
                .list_agents(ListAgentsRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    is_active,
                    kind,
                })
                .await?
                .into_inner();
            Ok((r.agents, r.next_page_token))
        }
    })
    .await?)
}

/// Agent ids → slugs, for showing agents by name. Best effort: empty when
/// the agents cannot be listed (ids are shown then).
pub async fn agent_names(ctx: &Ctx) -> AgentNames {
    all_agents(ctx)
        .await
        .map(|agents| agents.into_iter().map(|a| (a.id, a.slug)).collect())
        .unwrap_or_default()
}

/// The agent `reference` names, from a listing (slug or id prefix).
fn find_agent(agents: Vec<Agent>, reference: &str) -> Result<Agent, UsageError> {
    if let Some(agent) = agents.iter().find(|a| a.slug == reference) {
        return Ok(agent.clone());
    }
    if !looks_like_prefix(reference) {
        return Err(UsageError(format!("no agent with slug '{reference}'")));
    }
    let id = match match_prefix("agent", reference, agents.iter().map(|a| a.id.as_str())) {
        Ok(id) => id,
        Err(e) if e.0.starts_with("no ") => {
            return Err(UsageError(format!(
                "no agent with slug or id '{reference}'"
            )));
        }
        Err(e) => return Err(e),
    };
    Ok(agents
        .into_iter()
        .find(|a| a.id == id)
        .expect("matched id is listed"))
}

/// The id of the agent named by `reference` (UUID, slug or id prefix).
pub async fn agent_id(ctx: &Ctx, reference: &str) -> anyhow::Result<String> {
    if let Some(id) = canonical_uuid(reference) {
        return Ok(id);
    }
    Ok(find_agent(all_agents(ctx).await?, reference)?.id)
}

/// The agent named by `reference` (UUID, slug or id prefix).
pub async fn agent(ctx: &Ctx, reference: &str) -> anyhow::Result<Agent> {
    if let Some(id) = canonical_uuid(reference) {
        let response = ctx
            .agents()
            .get_agent(GetAgentRequest { id })
            .await?
            .into_inner();
        return response
            .agent
            .ok_or_else(|| anyhow::anyhow!("the server answered without an agent"));
    }
    Ok(find_agent(all_agents(ctx).await?, reference)?)
}

/// Every capability, or those of one agent.
pub async fn all_capabilities(ctx: &Ctx, agent_id: &str) -> anyhow::Result<Vec<Capability>> {
    let client = ctx.agents();
    let agent_id = agent_id.to_string();
    Ok(all_pages(|page_token| {
        let mut client = client.clone();
        let agent_id = agent_id.clone();
        async move {
            let r = client
                .list_capabilities(ListCapabilitiesRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    agent_id,
                    is_enabled: None,
                })
                .await?
                .into_inner();
            Ok((r.capabilities, r.next_page_token))
        }
    })
    .await?)
}

/// The id of the capability named by `reference`: a UUID, `AGENT/KEY`, a
/// key unique across agents, or an id prefix.
pub async fn capability_id(ctx: &Ctx, reference: &str) -> anyhow::Result<String> {
    if let Some(id) = canonical_uuid(reference) {
        return Ok(id);
    }
    if let Some((agent_ref, key)) = reference.split_once('/') {
        let agent_id = agent_id(ctx, agent_ref).await?;
        let caps = all_capabilities(ctx, &agent_id).await?;
        return caps
            .into_iter()
            .find(|c| c.key == key)
            .map(|c| c.id)
            .ok_or_else(|| usage(format!("agent '{agent_ref}' has no capability '{key}'")));
    }
    let caps = all_capabilities(ctx, "").await?;
    let by_key: Vec<&Capability> = caps.iter().filter(|c| c.key == reference).collect();
    match by_key.as_slice() {
        [one] => return Ok(one.id.clone()),
        [] => {}
        _ => {
            return Err(usage(format!(
                "several agents have a capability '{reference}': name it as AGENT/{reference}"
            )));
        }
    }
    if !looks_like_prefix(reference) {
        return Err(usage(format!("no capability with key '{reference}'")));
    }
    Ok(match_prefix(
        "capability",
        reference,
        caps.iter().map(|c| c.id.as_str()),
    )?)
}

/// The id named by `reference` (UUID or id prefix) among the ids a list RPC
/// pages through: `list_ids(page_token)` returns one page's ids and the next
/// token, as for [`all_pages`]. A full UUID, or text that cannot be a prefix,
/// costs no call.
async fn id_by_prefix<F, Fut>(what: &str, reference: &str, list_ids: F) -> anyhow::Result<String>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<String>, String), Status>>,
{
    if let Some(id) = canonical_uuid(reference) {
        return Ok(id);
    }
    if !looks_like_prefix(reference) {
        return Err(match_prefix(what, reference, []).unwrap_err().into());
    }
    let ids = all_pages(list_ids).await?;
    Ok(match_prefix(
        what,
        reference,
        ids.iter().map(String::as_str),
    )?)
}

/// The id of the task named by `reference` (UUID or id prefix).
pub async fn task_id(ctx: &Ctx, reference: &str) -> anyhow::Result<String> {
    let client = ctx.tasks();
    id_by_prefix("task", reference, |page_token| {
        let mut client = client.clone();
        async move {
            let r = client
                .list_tasks(ListTasksRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok((
                r.tasks.into_iter().map(|t| t.id).collect(),
                r.next_page_token,
            ))
        }
    })
    .await
}

/// Resolves an optional task reference.
pub async fn opt_task_id(ctx: &Ctx, reference: Option<&str>) -> anyhow::Result<Option<String>> {
    match reference {
        Some(r) => Ok(Some(task_id(ctx, r).await?)),
        None => Ok(None),
    }
}

/// The id of the execution named by `reference` (UUID or id prefix).
pub async fn execution_id(ctx: &Ctx, reference: &str) -> anyhow::Result<String> {
    let client = ctx.executions();
    id_by_prefix("execution", reference, |page_token| {
        let mut client = client.clone();
        async move {
            let r = client
                .list_executions(ListExecutionsRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok((
                r.executions.into_iter().map(|e| e.id).collect(),
                r.next_page_token,
            ))
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1a2b3c4d-0000-4000-8000-000000000001";
    const B: &str = "1a2b9999-0000-4000-8000-000000000002";

    #[test]
    fn uuids_are_canonicalized() {
        assert_eq!(canonical_uuid(A).as_deref(), Some(A));
        assert_eq!(canonical_uuid(&A.to_uppercase()).as_deref(), Some(A));
        assert_eq!(
            canonical_uuid("1a2b3c4d000040008000000000000001").as_deref(),
            Some(A)
        );
        assert_eq!(canonical_uuid("1a2b3c4d"), None);
        assert_eq!(canonical_uuid("git"), None);
    }

    #[test]
    fn prefixes_match_one_id() {
        assert_eq!(match_prefix("task", "1a2b3c", [A, B]).unwrap(), A);
        assert_eq!(match_prefix("task", "1A2B9", [A, B]).unwrap(), B);
        let err = match_prefix("task", "1a2b", [A, B]).unwrap_err().0;
        assert!(err.contains("ambiguous"), "{err}");
        let err = match_prefix("task", "ffff", [A, B]).unwrap_err().0;
        assert_eq!(err, "no task id starts with 'ffff'");
        let err = match_prefix("task", "1a2", [A, B]).unwrap_err().0;
        assert!(err.contains("at least its first 4 characters"), "{err}");
        let err = match_prefix("task", "nope!", [A]).unwrap_err().0;
        assert!(err.contains("is not a task id"), "{err}");
    }

    #[test]
    fn agents_are_found_by_slug_then_prefix() {
        let agents = vec![
            Agent {
                id: A.into(),
                slug: "git".into(),
                ..Default::default()
            },
            Agent {
                id: B.into(),
                slug: "dead".into(),
                ..Default::default()
            },
        ];
        assert_eq!(find_agent(agents.clone(), "git").unwrap().id, A);
        // A slug that also looks like a hex prefix wins as a slug.
        assert_eq!(find_agent(agents.clone(), "dead").unwrap().id, B);
        assert_eq!(find_agent(agents.clone(), "1a2b3").unwrap().id, A);
        assert_eq!(
            find_agent(agents.clone(), "rg").unwrap_err().0,
            "no agent with slug 'rg'"
        );
        assert_eq!(
            find_agent(agents, "ffff").unwrap_err().0,
            "no agent with slug or id 'ffff'"
        );
    }
}
