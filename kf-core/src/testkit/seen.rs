//! The seen-marks scenarios of the [`ConversationLog`] suite (`record_seen` and `seen`), run through
//! [`conversation_log_conformance_tests!`](crate::conversation_log_conformance_tests).

use std::sync::Arc;

use super::fixtures::{id, ok, open, visitor};
use crate::model::{Actor, ConversationId, SeenMark, Seq};
use crate::store::{ConversationLog, StoreError};

/// The marks of `conversations`, sorted so that backends may list them in any order.
async fn marks(store: &dyn ConversationLog, conversations: &[ConversationId]) -> Vec<SeenMark> {
    let mut marks = ok(store.seen(conversations).await, "seen");
    marks.sort_by(|a, b| {
        (a.conversation, a.from.role(), a.from.id_str()).cmp(&(
            b.conversation,
            b.from.role(),
            b.from.id_str(),
        ))
    });
    marks
}

fn sorted(mut expected: Vec<SeenMark>) -> Vec<SeenMark> {
    expected.sort_by(|a, b| {
        (a.conversation, a.from.role(), a.from.id_str()).cmp(&(
            b.conversation,
            b.from.role(),
            b.from.id_str(),
        ))
    });
    expected
}

/// Seen marks are kept per (conversation, participant), only ever raised — within one batch too — and read
/// back for several conversations at once; marks of unknown conversations are skipped, and a `system` mark or
/// one at seq 0 is refused with nothing stored.
pub async fn seen_marks_only_move_forward(store: Arc<dyn ConversationLog>) {
    let (c1, c2) = (
        open(&*store, "v1", "open-1").await,
        open(&*store, "v2", "open-2").await,
    );
    assert_eq!(marks(&*store, &[c1, c2]).await, vec![]);
    ok(store.record_seen(Vec::new()).await, "nothing to record");
    let alice = Actor::Agent(id("alice"));
    let mark = |c, from: &Actor, seq| SeenMark::new(c, from.clone(), Seq(seq));
    ok(
        store
            .record_seen(vec![
                mark(c1, &visitor("v1"), 3),
                mark(c1, &alice, 5),
                mark(c1, &alice, 2), // lower, later in the same batch: the 5 stays
                mark(c2, &visitor("v2"), 1),
                mark(ConversationId::generate(), &alice, 4), // unknown: skipped
            ])
            .await,
        "record",
    );
    let expected = sorted(vec![
        mark(c1, &visitor("v1"), 3),
        mark(c1, &alice, 5),
        mark(c2, &visitor("v2"), 1),
    ]);
    assert_eq!(marks(&*store, &[c1, c2]).await, expected);
    assert_eq!(marks(&*store, &[c2]).await, vec![mark(c2, &visitor("v2"), 1)]);
    // A later, lower mark changes nothing; a higher one raises it.
    ok(
        store
            .record_seen(vec![mark(c1, &alice, 4), mark(c1, &visitor("v1"), 7)])
            .await,
        "raise",
    );
    assert_eq!(
        marks(&*store, &[c1]).await,
        sorted(vec![mark(c1, &visitor("v1"), 7), mark(c1, &alice, 5)])
    );
    for bad in [mark(c2, &Actor::System, 1), mark(c2, &alice, 0)] {
        let refused = store.record_seen(vec![mark(c2, &alice, 9), bad.clone()]).await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{bad:?}: {refused:?}"
        );
    }
    assert_eq!(
        marks(&*store, &[c2]).await,
        vec![mark(c2, &visitor("v2"), 1)],
        "refused batches store nothing"
    );
    assert_eq!(marks(&*store, &[ConversationId::generate()]).await, vec![]);
}
