//! The "Was this helpful?" links at the end of every posted note (issue 16
//! item 7): signed for the job, after the note's words, before the job's
//! marker, and absent without a public URL.

use crate::helpers::Harness;
use csp_domain::{EnhancementStatus, FeedbackVote};
use csp_enhance::FeedbackKey;
use csp_store::test_support::Backend;
use csp_tickets_worker::Config;
use uuid::Uuid;

/// The `href`s of the note's feedback paragraph.
fn feedback_hrefs(note: &str) -> Vec<String> {
    let at = note
        .find("Was this helpful?")
        .unwrap_or_else(|| panic!("no feedback links in {note}"));
    let paragraph = &note[at..note[at..].find("</p>").map_or(note.len(), |end| at + end)];
    paragraph
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

pub(crate) async fn a_posted_note_ends_with_signed_feedback_links(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(Config {
        public_url: Some("https://csp.example/".into()),
        ..h.config()
    });
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Completed, "{record:?}");
    let notes = h.notes_for(&record);
    let [note] = &notes[..] else {
        panic!("{} notes", notes.len())
    };

    let hrefs = feedback_hrefs(note);
    let key = FeedbackKey::from_keyring(&h.keyring);
    let mut votes = Vec::new();
    for href in &hrefs {
        let rest = href
            .strip_prefix("https://csp.example/feedback/")
            .unwrap_or_else(|| panic!("{href}"));
        let (path, sig) = rest.split_once("?sig=").unwrap();
        let (job_id, vote) = path.split_once('/').unwrap();
        let (job_id, vote): (Uuid, FeedbackVote) = (job_id.parse().unwrap(), vote.parse().unwrap());
        assert_eq!(job_id, job.job_id);
        assert!(key.verify(job_id, vote, sig), "{href}");
        assert_eq!(sig, sig.to_ascii_lowercase());
        votes.push(vote);
    }
    assert_eq!(votes, [FeedbackVote::Helpful, FeedbackVote::NotHelpful]);
    assert!(note.contains(">👍 Yes</a> · <a href="), "{note}");
    // After the note's words, before the connector's job marker.
    let links = note.find("Was this helpful?").unwrap();
    assert!(
        note.find("Recommended Next Steps").unwrap() < links,
        "{note}"
    );
    assert!(
        links < note.find(&format!("csp-job:{}", job.job_id)).unwrap(),
        "{note}"
    );
    // Not the model's words: the job's output does not carry them.
    let output = record.llm_output.unwrap();
    assert!(!output.contains("Was this helpful"), "{output}");
    h.stop().await;
}

pub(crate) async fn without_a_public_url_notes_carry_no_feedback_links(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(Config {
        public_url: None,
        ..h.config()
    });
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Completed, "{record:?}");
    let notes = h.notes_for(&record);
    assert_eq!(notes.len(), 1);
    assert!(!notes[0].contains("Was this helpful?"), "{}", notes[0]);
    assert!(!notes[0].contains("/feedback/"), "{}", notes[0]);
    h.stop().await;
}
