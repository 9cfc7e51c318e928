//! The one write path. Every state change of a conversation — its creation, a message, an assignment, a
//! transfer, a close, a reopen, a message left, a timer's outcome — is a [`Command`] handed to
//! [`Engine::commit`], which:
//!
//! 1. appends it to the conversation log (`append_batch`; a single event is a batch of one): the log checks it
//!    against `Conversation::apply`, gives it the next seq and applies it to the conversation's record in the
//!    same durable commit (group commit in SQLite), so a refused command stores nothing and takes no seq;
//! 2. settles the capacity [`Hold`] the command carries: kept when the event hands the conversation to that
//!    agent, released (and the conversation put back in its queue when the log failed rather than refused)
//!    otherwise;
//! 3. reacts: publishes the event to its subscribers and applies it to the engine's state — the router, the
//!    timers, announcements, and the queues that may now drain (see `reactions.rs`).
//!
//! The whole sequence runs on a task of its own from the moment `commit` is called, so a caller whose future
//! is dropped (a client that disconnects mid-request) leaves neither a half-applied state nor a leaked
//! reservation: the commit finishes, or fails and is undone, either way. Nothing else in the engine appends.

use futures::future::BoxFuture;
use tracing::Instrument;

use super::{Engine, RequestError};
use crate::model::{AgentId, Conversation, ConversationId, Event, EventKind, TenantId};
use crate::store::{Appended, EventDraft, NewConversation, StoreError};

/// A state change of a conversation, handed to [`Engine::commit`].
#[derive(Debug)]
pub(crate) enum Command {
    /// Open a conversation: its `created` event at seq 1.
    Create(Opening),
    /// Append an event to a conversation's log.
    Append {
        /// The event.
        draft: EventDraft,
        /// The reservation of the agent the event hands the conversation to, if any (boxed: it carries a
        /// conversation record).
        hold: Option<Box<Hold>>,
    },
    /// Append events to one conversation in one commit where the log can (`append_batch`), in order: what must
    /// not be logged without the others. The outcome is the last event's.
    Batch(Vec<EventDraft>),
}

impl Command {
    /// The conversation the command changes (`None` for a creation: its id is known once it is committed).
    fn conversation(&self) -> Option<ConversationId> {
        match self {
            Command::Create(_) => None,
            Command::Append { draft, .. } => Some(draft.conversation),
            Command::Batch(drafts) => drafts.first().map(|draft| draft.conversation),
        }
    }

    /// Appends an event that moves no capacity of its own.
    pub(crate) fn append(draft: EventDraft) -> Self {
        Command::Append { draft, hold: None }
    }

    /// Appends an event that hands the conversation to the agent `hold` reserved.
    pub(crate) fn hand_over(draft: EventDraft, hold: Hold) -> Self {
        Command::Append {
            draft,
            hold: Some(Box::new(hold)),
        }
    }
}

/// A conversation to create, and what follows its creation.
#[derive(Debug)]
pub(crate) struct Opening {
    /// The conversation (idempotent by the visitor's client id).
    pub(crate) new: NewConversation,
    /// Outside its group's hours: it becomes a message left for the group at once and is never routed.
    pub(crate) offline: bool,
    /// The welcome message to log after `created` (an entry point's, else the group's).
    pub(crate) welcome: Option<String>,
}

/// A capacity reservation the router holds for an agent until the event that hands it the conversation is
/// committed. The pipeline owns it, so it is settled whatever happens to the caller.
#[derive(Debug)]
pub(crate) struct Hold {
    tenant: TenantId,
    conversation: ConversationId,
    agent: AgentId,
    /// Put back in its queue when the log fails (not when it refuses: the conversation has moved on).
    requeue: Option<Conversation>,
}

impl Hold {
    /// The reservation of `agent` for `conversation`, already made in the router.
    pub(crate) fn new(tenant: &TenantId, conversation: ConversationId, agent: &AgentId) -> Self {
        Hold {
            tenant: tenant.clone(),
            conversation,
            agent: agent.clone(),
            requeue: None,
        }
    }

    /// Requeues `conversation` (as it was taken from its queue) should the log fail.
    pub(crate) fn requeue(mut self, conversation: Conversation) -> Self {
        self.requeue = Some(conversation);
        self
    }
}

impl Engine {
    /// Commits a command (see the module docs). The work starts at once on its own task; the returned future
    /// only waits for its outcome and may be dropped.
    ///
    /// Once the engine has shut down (every tracked task ended), it refuses with [`RequestError::ShuttingDown`].
    ///
    /// The work runs in a `kf.commit` span (`conversation`; a child of the request's span, if any), and logs each
    /// committed event (`seq`, `kind`) at debug level.
    pub(crate) fn commit(&self, command: Command) -> BoxFuture<'static, Result<Appended, RequestError>> {
        if let Err(refused) = self.check_open() {
            return Box::pin(std::future::ready(Err(refused)));
        }
        let engine = self.clone();
        let span = tracing::debug_span!("kf.commit", conversation = tracing::field::Empty);
        if !span.is_disabled()
            && let Some(conversation) = command.conversation()
        {
            span.record("conversation", tracing::field::display(conversation));
        }
        // `detached` carries the current span into the task: this one.
        let _entered = span.enter();
        self.detached(async move { engine.run(command).await })
    }

    /// Counts and logs a newly committed event.
    fn committed(&self, event: &Event) {
        let metrics = &self.inner.metrics;
        metrics.events_committed.increment(1);
        if matches!(event.data, EventKind::Message { .. }) {
            metrics.messages_committed.increment(1);
        }
        tracing::debug!(seq = event.seq.0, kind = event.data.name(), "event committed");
    }

    /// Runs `work` to completion on its own task (inline without a Tokio runtime), in the current span; the
    /// returned future waits for it. What a dropped caller must not interrupt goes through here. The task is
    /// tracked: a shutdown waits for it (`lifecycle.rs`).
    pub(crate) fn detached<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, RequestError>> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, RequestError>> {
        // Without a subscriber (or with this level off) the span is none: no wrapper to poll through.
        let span = tracing::Span::current();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let commits = &self.inner.lifecycle.commits;
                let task = if span.is_none() {
                    commits.spawn_on(work, &runtime)
                } else {
                    commits.spawn_on(work.instrument(span), &runtime)
                };
                Box::pin(async move {
                    task.await
                        .map_err(|failed| RequestError::Unavailable(StoreError::backend(failed)))?
                })
            }
            Err(_) => Box::pin(work.instrument(span)),
        }
    }

    async fn run(&self, command: Command) -> Result<Appended, RequestError> {
        match command {
            Command::Create(Opening {
                new,
                offline,
                welcome,
            }) => {
                let created = self.inner.log.create_conversation(new).await?;
                tracing::Span::current()
                    .record("conversation", tracing::field::display(created.conversation.id));
                let committed = Appended {
                    event: created.event,
                    conversation: created.conversation,
                    duplicate: !created.created,
                };
                if !committed.duplicate {
                    self.committed(&committed.event);
                    Box::pin(self.opened(&committed, offline, welcome)).await;
                }
                Ok(committed)
            }
            Command::Append { draft, hold } => self.write(vec![draft], hold.map(|hold| *hold)).await,
            Command::Batch(drafts) => self.write(drafts, None).await,
        }
    }

    /// Appends events to one conversation in one commit (a single event is a batch of one: this is the
    /// engine's only call that appends), settles the hold by the outcome, and reacts to each event committed.
    /// The outcome is the last event's.
    async fn write(&self, drafts: Vec<EventDraft>, hold: Option<Hold>) -> Result<Appended, RequestError> {
        let mut last = Err(StoreError::Invalid("an empty batch".into()));
        for result in self.inner.log.append_batch(drafts).await {
            if let Ok(committed) = &result
                && !committed.duplicate
            {
                self.committed(&committed.event);
                // Boxed: reactions are large futures (routing, draining queues), and the commit's future is
                // moved into its task whole, per commit.
                Box::pin(self.react(committed)).await;
            }
            last = result;
        }
        if let Some(hold) = hold {
            self.settle(hold, &last);
        }
        Ok(last?)
    }

    /// Releases a reservation the committed event did not use.
    fn settle(&self, hold: Hold, result: &Result<Appended, StoreError>) {
        let router = &self.inner.routing.ledger;
        match result {
            Ok(committed) if !committed.duplicate => {}
            Ok(_) | Err(StoreError::Transition(_)) => {
                router.unreserve(&hold.tenant, hold.conversation, &hold.agent);
            }
            Err(_) => {
                router.unreserve(&hold.tenant, hold.conversation, &hold.agent);
                if let Some(conversation) = &hold.requeue {
                    router.requeue(conversation);
                }
            }
        }
    }
}
