//! Table tests for `evaluate`: every category and protection rule, including the traps the
//! original tool fell into (domain.md §3, §10.3–10.4, §11).

use super::*;
use crate::model::domino::*;
use crate::model::users::KeycloakUser;
use crate::model::workloads::{Evidence, ImageRef, WorkloadImage, Workloads};
use crate::model::{Blob, InventoryBuilder, Manifest, ManifestKind};

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const ENV_REPO: &str = "dominodatalab/environment";
const MODEL_REPO: &str = "dominodatalab/model";

fn oid(n: u8) -> ObjectId {
    let mut b = [0u8; 12];
    b[0] = 0x65;
    b[11] = n;
    ObjectId::from_bytes(b)
}

/// A small world: registry tags (with a digest label each) plus Mongo, Kubernetes, Keycloak.
#[derive(Default)]
struct World {
    tags: Vec<(&'static str, String, String, Option<i64>)>,
    data: DominoData,
    pods: Vec<WorkloadImage>,
    users: Vec<KeycloakUser>,
}

impl World {
    fn tag(&mut self, repo: &'static str, tag: &str, digest: &str) -> &mut Self {
        self.tags
            .push((repo, tag.to_string(), digest.to_string(), Some(NOW - 30 * DAY)));
        self
    }

    /// An environment with `n` built revisions tagged `<env>-1..n`, the last one active.
    fn env(&mut self, id: u8, name: &str, archived: bool, n: u8) -> &mut Self {
        self.data.environments.push(Environment {
            id: oid(id),
            name: name.into(),
            archived,
            active_revision: (n > 0).then(|| oid(id * 10 + n)),
            owner: Some(oid(200)),
            private: false,
        });
        for i in 1..=n {
            let tag = format!("{}-{i}", oid(id));
            self.data.revisions.push(rev(id * 10 + i, id, &tag));
            self.tag(ENV_REPO, &tag, &tag);
        }
        self
    }

    fn pod(&mut self, image: &str) -> &mut Self {
        let evidence = Evidence {
            namespace: "domino-compute".into(),
            kind: "Pod".into(),
            name: "run-1".into(),
            container: "main".into(),
            context: None,
        };
        self.pods.push(WorkloadImage {
            image: ImageRef::parse(image).unwrap(),
            evidence,
        });
        self
    }

    fn inventory(&self) -> Inventory {
        let mut b = InventoryBuilder::new("registry:5000");
        for (repo, tag, label, created) in &self.tags {
            let digest = b.digest(&crate::model::digest::sha256_digest(label.as_bytes()));
            let layer = b.digest(&crate::model::digest::sha256_digest(
                format!("layer {label}").as_bytes(),
            ));
            let config = b.digest(&crate::model::digest::sha256_digest(
                format!("config {label}").as_bytes(),
            ));
            b.manifest(Manifest {
                digest,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: 500,
                kind: ManifestKind::Image {
                    config: Blob {
                        digest: config,
                        size: 10,
                    },
                    layers: vec![Blob {
                        digest: layer,
                        size: 1000,
                    }],
                },
                created: *created,
            });
            let r = b.repo(repo);
            b.tag(r, tag, digest);
        }
        b.finish()
    }

    fn sources(&self) -> SourcesData {
        SourcesData {
            registry: SourceState::Ok(()),
            mongo: SourceState::Ok(self.data.clone()),
            kubernetes: SourceState::Ok(Workloads {
                images: self.pods.clone(),
            }),
            keycloak: SourceState::Ok(self.users.clone()),
        }
    }

    fn run(&self, policy: &Policy) -> Outcome {
        self.run_with(policy, self.sources())
    }

    fn run_with(&self, policy: &Policy, sources: SourcesData) -> Outcome {
        let inv = self.inventory();
        let results = evaluate(&inv, &sources, policy, NOW);
        Outcome { inv, results }
    }
}

fn rev(id: u8, env: u8, tag: &str) -> EnvRevision {
    EnvRevision {
        id: oid(id),
        environment: oid(env),
        tag: Some(tag.into()),
        repository: Some(format!("registry:5000/{ENV_REPO}")),
        built: true,
        author: None,
        cloned_from: None,
    }
}

struct Outcome {
    inv: Inventory,
    results: Vec<CategoryResult>,
}

impl Outcome {
    fn get(&self, id: CategoryId) -> &CategoryResult {
        self.results.iter().find(|r| r.id == id).unwrap()
    }
    /// Candidate tag names of a category, sorted.
    fn candidates(&self, id: CategoryId) -> Vec<String> {
        let mut v: Vec<String> = self
            .get(id)
            .candidates
            .iter()
            .map(|c| self.inv.tag(c.tag).name.clone())
            .collect();
        v.sort();
        v
    }
    /// Protection reasons of a tag in a category, joined.
    fn protected(&self, id: CategoryId, tag: &str) -> String {
        let p = self.get(id).protected.iter().find(|p| self.inv.tag(p.tag).name == tag);
        p.map(|p| p.protected_by.join(" | ")).unwrap_or_default()
    }
    fn status(&self, id: CategoryId) -> &CategoryStatus {
        &self.get(id).status
    }
}

fn t(env: u8, n: u8) -> String {
    format!("{}-{n}", oid(env))
}

#[test]
fn archived_environment_tags_are_candidates_with_a_readable_reason() {
    let mut w = World::default();
    w.env(1, "Spark 3", true, 2).env(2, "Live", false, 1);
    let out = w.run(&Policy::default());
    assert_eq!(out.candidates(CategoryId::ArchivedEnvironments), vec![t(1, 1), t(1, 2)]);
    let c = &out.get(CategoryId::ArchivedEnvironments).candidates[0];
    assert_eq!(
        c.reasons,
        vec![format!("environment 'Spark 3' ({}) is archived", oid(1))]
    );
    assert_eq!(c.object_id, Some(oid(1)));
}

#[test]
fn archived_environment_used_by_a_running_pod_through_its_digest_only_is_protected() {
    let mut w = World::default();
    w.env(1, "Spark 3", true, 2);
    let digest = crate::model::digest::sha256_digest(t(1, 1).as_bytes());
    w.pod(&format!("registry:5000/{ENV_REPO}@{digest}"));
    let out = w.run(&Policy::default());
    assert_eq!(out.candidates(CategoryId::ArchivedEnvironments), vec![t(1, 2)]);
    let why = out.protected(CategoryId::ArchivedEnvironments, &t(1, 1));
    assert!(
        why.contains("used by Pod domino-compute/run-1 container main (by digest sha256:"),
        "{why}"
    );
}

#[test]
fn a_pod_using_a_tag_by_name_protects_it_in_every_category() {
    let mut w = World::default();
    w.env(1, "Old", true, 1);
    w.tag(ENV_REPO, "stray", "stray");
    w.pod(&format!(
        "docker-registry.domino-platform.svc:5000/{ENV_REPO}:{}",
        t(1, 1)
    ));
    w.pod(&format!("{ENV_REPO}:stray"));
    let out = w.run(&Policy::default());
    assert!(out.candidates(CategoryId::ArchivedEnvironments).is_empty());
    assert!(out.candidates(CategoryId::UnreferencedTags).is_empty());
    assert!(
        out.protected(CategoryId::UnreferencedTags, "stray")
            .contains("used by Pod")
    );
}

#[test]
fn two_tags_on_one_digest_where_one_is_in_use_keep_each_other() {
    let mut w = World::default();
    w.env(1, "Old", true, 1);
    w.tag(ENV_REPO, "alias", &t(1, 1));
    w.pod(&format!("{ENV_REPO}:alias"));
    let out = w.run(&Policy::default());
    assert!(out.candidates(CategoryId::ArchivedEnvironments).is_empty());
    let why = out.protected(CategoryId::ArchivedEnvironments, &t(1, 1));
    assert_eq!(why, format!("shares digest with protected tag {ENV_REPO}:alias"));
}

#[test]
fn a_candidate_sharing_a_digest_with_a_tag_the_category_keeps_stays() {
    let mut w = World::default();
    w.env(1, "Old", true, 1).env(2, "Live", false, 2);
    // Live's old revision 2-1 has the same image as the archived 1-1.
    w.tags.retain(|x| x.1 != t(2, 1));
    w.tag(ENV_REPO, &t(2, 1), &t(1, 1));
    let out = w.run(&Policy::default());
    let why = out.protected(CategoryId::ArchivedEnvironments, &t(1, 1));
    assert!(why.starts_with("shares digest with tag"), "{why}");
}

#[test]
fn old_revisions_keep_the_newest_n_and_protect_clone_sources_of_kept_revisions() {
    let mut w = World::default();
    w.env(1, "Base", false, 7).env(2, "Clone", false, 1);
    // Env 2's only revision was cloned from env 1's first revision.
    w.data
        .revisions
        .iter_mut()
        .find(|r| r.id == oid(21))
        .unwrap()
        .cloned_from = Some(oid(11));
    // A failed build is not counted and never proposed.
    let mut failed = rev(18, 1, &t(1, 8));
    failed.built = false;
    failed.id = oid(9);
    w.data.revisions.push(failed);
    let out = w.run(&Policy::default());
    assert_eq!(out.candidates(CategoryId::OldRevisions), vec![t(1, 2)]);
    let why = out.protected(CategoryId::OldRevisions, &t(1, 1));
    assert_eq!(
        why,
        format!(
            "clone source of kept revision {} of environment 'Clone' ({})",
            oid(21),
            oid(2)
        )
    );
    let c = &out.get(CategoryId::OldRevisions).candidates[0];
    assert!(c.reasons[0].contains("older than the newest 5 of 7"), "{:?}", c.reasons);
}

#[test]
fn clone_protection_is_transitive_and_follows_the_category() {
    let mut w = World::default();
    w.env(1, "A", true, 1).env(2, "B", true, 1).env(3, "C", false, 1);
    // C-1 (kept) cloned from B-1 cloned from A-1; A and B are archived.
    w.data
        .revisions
        .iter_mut()
        .find(|r| r.id == oid(31))
        .unwrap()
        .cloned_from = Some(oid(21));
    w.data
        .revisions
        .iter_mut()
        .find(|r| r.id == oid(21))
        .unwrap()
        .cloned_from = Some(oid(11));
    let out = w.run(&Policy::default());
    assert!(out.candidates(CategoryId::ArchivedEnvironments).is_empty());
    assert!(
        out.protected(CategoryId::ArchivedEnvironments, &t(1, 1))
            .contains("clone source of kept revision")
    );
    // Without the live clone, both archived environments go, together.
    let mut w2 = World::default();
    w2.env(1, "A", true, 1).env(2, "B", true, 1);
    w2.data
        .revisions
        .iter_mut()
        .find(|r| r.id == oid(21))
        .unwrap()
        .cloned_from = Some(oid(11));
    assert_eq!(
        w2.run(&Policy::default()).candidates(CategoryId::ArchivedEnvironments),
        vec![t(1, 1), t(2, 1)]
    );
}

#[test]
fn old_revisions_never_propose_the_active_revision() {
    let mut w = World::default();
    w.env(1, "Pinned", true, 3);
    w.data.environments[0].active_revision = Some(oid(11));
    let policy = Policy {
        keep_revisions: 1,
        ..Policy::default()
    };
    let out = w.run(&policy);
    assert_eq!(out.candidates(CategoryId::OldRevisions), vec![t(1, 2)]);
    assert!(
        out.protected(CategoryId::OldRevisions, &t(1, 1))
            .contains("never an old revision")
    );
}

fn model_world(short_form: bool, archived: bool) -> World {
    let mut w = World::default();
    w.env(1, "Base", false, 1);
    let full = format!("{}-v1-2025108131540_0fPPRse8", oid(50));
    w.tag(MODEL_REPO, &full, "m1");
    w.data.models.push(Model {
        id: oid(50),
        name: "Churn".into(),
        archived,
        environment: Some(oid(1)),
        owner: None,
    });
    let stored = if short_form { format!("{}-v1", oid(50)) } else { full };
    w.data.versions.push(ModelVersion {
        id: oid(51),
        model: oid(50),
        revision: Some(oid(11)),
        slugs: vec![stored],
        repository: None,
    });
    w
}

#[test]
fn a_model_tag_stored_in_short_form_still_matches_its_registry_tag() {
    let full = format!("{}-v1-2025108131540_0fPPRse8", oid(50));
    let out = model_world(true, true).run(&Policy::default());
    assert_eq!(out.candidates(CategoryId::ArchivedModels), vec![full.clone()]);
    assert!(out.get(CategoryId::OrphanedReferences).records.is_empty());
    // Deployed: the short stored slug protects the full registry tag.
    let mut w = model_world(true, false);
    w.data
        .usage
        .active_model_versions
        .push(ActiveModelVersion { version: oid(51) });
    let out = w.run(&Policy::default());
    assert!(out.candidates(CategoryId::UnreferencedTags).is_empty());
    assert!(out.candidates(CategoryId::ArchivedModels).is_empty());
}

#[test]
fn a_failed_build_is_neither_an_orphan_nor_an_image() {
    let mut w = World::default();
    w.env(1, "Env", false, 1);
    let mut failed = rev(12, 1, &t(1, 2));
    failed.built = false;
    w.data.revisions.push(failed);
    let mut missing = rev(13, 1, &t(1, 3));
    missing.repository = None;
    w.data.revisions.push(missing);
    let out = w.run(&Policy::default());
    let recs: Vec<_> = out
        .get(CategoryId::OrphanedReferences)
        .records
        .iter()
        .map(|r| (r.collection, r.document_id))
        .collect();
    assert_eq!(recs, vec![("environment_revisions", oid(13))]);
}

#[test]
fn orphaned_records_that_something_needs_are_protected() {
    let mut w = World::default();
    w.env(1, "Env", false, 1);
    w.tags.clear();
    w.data.versions.push(ModelVersion {
        id: oid(51),
        model: oid(50),
        revision: None,
        slugs: vec!["x-v1".into()],
        repository: None,
    });
    w.data
        .usage
        .active_model_versions
        .push(ActiveModelVersion { version: oid(51) });
    w.tag(MODEL_REPO, "unrelated", "u").tag(ENV_REPO, "unrelated", "e");
    let out = w.run(&Policy::default());
    let r = out.get(CategoryId::OrphanedReferences);
    assert!(r.records.is_empty(), "{:?}", r.records);
    let reasons: Vec<_> = r
        .protected_records
        .iter()
        .map(|(rec, why)| (rec.collection, why.join(" | ")))
        .collect();
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons[0].1.starts_with("active revision of environment 'Env'"),
        "{reasons:?}"
    );
    assert!(reasons[1].1.contains("is running"), "{reasons:?}");
}

#[test]
fn a_disabled_users_private_environment_that_is_a_project_default_keeps_its_active_revision() {
    let mut w = World::default();
    w.env(1, "Mine", false, 2);
    w.data.environments[0].private = true;
    w.data.users.push(User {
        id: oid(200),
        name: "Ann Lee".into(),
        login: "ann".into(),
    });
    w.users.push(KeycloakUser {
        username: "ann".into(),
        domino_id: Some(oid(200)),
        enabled: false,
    });
    w.users.push(KeycloakUser {
        username: "bob".into(),
        domino_id: None,
        enabled: false,
    });
    w.data.usage.defaults.push(DefaultUsage {
        kind: DefaultKind::Project,
        id: oid(90),
        name: "churn".into(),
        environment: oid(1),
        revision_spec: Some(RevisionSpec::Active),
    });
    let out = w.run(&Policy::default());
    let id = CategoryId::DeactivatedOwnerEnvironments;
    assert_eq!(out.candidates(id), vec![t(1, 1)]);
    let why = out.protected(id, &t(1, 2));
    assert!(
        why.contains(&format!("default environment of project 'churn' ({})", oid(90))),
        "{why}"
    );
    assert!(out.get(id).candidates[0].reasons[0].contains("deactivated user 'Ann Lee' (ann)"));
}

#[test]
fn runs_protect_inside_the_window_and_config_usage_always() {
    // domain.md §10.3/§10.4: recent (5 d) vs old (35 d) run, days = 30; an old run plus a
    // project default stays used; no window means every run counts.
    let mut w = World::default();
    w.env(1, "Recent", false, 2)
        .env(2, "Old", false, 2)
        .env(3, "OldButProject", false, 2)
        .env(4, "Never", false, 2);
    for (env, days) in [(1, 5), (2, 35), (3, 100)] {
        w.data.usage.runs.push(RunUsage {
            environment: oid(env),
            revision: oid(env * 10 + 1),
            last_used: Some(NOW - days * DAY),
            count: 1,
            in_flight: 0,
        });
    }
    w.data.usage.defaults.push(DefaultUsage {
        kind: DefaultKind::Project,
        id: oid(90),
        name: "p".into(),
        environment: oid(3),
        revision_spec: None,
    });
    let windowed = Policy {
        unused_since_days: Some(30),
        ..Policy::default()
    };
    // Unused environments go whole, active revision included.
    let out = w.run(&windowed);
    assert_eq!(
        out.candidates(CategoryId::UnusedEnvironments),
        vec![t(2, 1), t(2, 2), t(4, 1), t(4, 2)]
    );
    let out = w.run(&Policy::default());
    assert_eq!(out.candidates(CategoryId::UnusedEnvironments), vec![t(4, 1), t(4, 2)]);
}

#[test]
fn a_run_in_flight_protects_however_old_the_last_completed_one_is() {
    // issue 11.1: env 1 revision 11 had a run complete 400 days ago and has one started
    // yesterday that is still running; env 2's only run completed 400 days ago.
    let mut w = World::default();
    w.env(1, "Busy", false, 2).env(2, "Idle", false, 2);
    w.data.usage.runs.push(RunUsage {
        environment: oid(1),
        revision: oid(11),
        last_used: Some(NOW - 400 * DAY),
        count: 1,
        in_flight: 1,
    });
    w.data.usage.runs.push(RunUsage {
        environment: oid(2),
        revision: oid(21),
        last_used: Some(NOW - 400 * DAY),
        count: 1,
        in_flight: 0,
    });
    let windowed = Policy {
        unused_since_days: Some(30),
        keep_revisions: 0,
        ..Policy::default()
    };
    let out = w.run(&windowed);
    assert_eq!(out.candidates(CategoryId::UnusedEnvironments), vec![t(2, 1), t(2, 2)]);
    assert!(!out.candidates(CategoryId::OldRevisions).contains(&t(1, 1)));
    let why = out.protected(CategoryId::OldRevisions, &t(1, 1));
    assert!(why.contains("has not completed (in use now)"), "{why}");
}

#[test]
fn an_unused_environment_goes_whole_and_old_revisions_still_keep_its_active_revision() {
    // issue 11.12: every tag of an unused environment, its active revision included.
    let mut w = World::default();
    w.env(1, "Idle", false, 2);
    let out = w.run(&Policy {
        keep_revisions: 1,
        ..Policy::default()
    });
    assert_eq!(out.candidates(CategoryId::UnusedEnvironments), vec![t(1, 1), t(1, 2)]);
    assert_eq!(out.candidates(CategoryId::OldRevisions), vec![t(1, 1)]);
    // Active revision 1 of 3, keep 1: revision 2 is old, revision 1 is active (never old).
    let mut w = World::default();
    w.env(1, "Idle", false, 3);
    w.data.environments[0].active_revision = Some(oid(11));
    let out = w.run(&Policy {
        keep_revisions: 1,
        ..Policy::default()
    });
    assert_eq!(out.candidates(CategoryId::OldRevisions), vec![t(1, 2)]);
    assert!(
        out.protected(CategoryId::OldRevisions, &t(1, 1))
            .contains("(never an old revision)")
    );
    assert_eq!(
        out.candidates(CategoryId::UnusedEnvironments),
        vec![t(1, 1), t(1, 2), t(1, 3)]
    );
}

#[test]
fn a_deactivated_owners_private_environment_nothing_uses_goes_whole() {
    let mut w = World::default();
    w.env(1, "Mine", false, 2).env(2, "Used", false, 2);
    for e in &mut w.data.environments {
        e.private = true;
    }
    w.users.push(KeycloakUser {
        username: "ann".into(),
        domino_id: Some(oid(200)),
        enabled: false,
    });
    // Env 2 is used (a run on its first revision); its active revision stays protected.
    w.data.usage.runs.push(RunUsage {
        environment: oid(2),
        revision: oid(21),
        last_used: Some(NOW - DAY),
        count: 1,
        in_flight: 0,
    });
    let out = w.run(&Policy::default());
    let id = CategoryId::DeactivatedOwnerEnvironments;
    assert_eq!(out.candidates(id), vec![t(1, 1), t(1, 2)]);
    assert!(
        out.protected(id, &t(2, 2))
            .starts_with("active revision of environment 'Used'"),
        "{}",
        out.protected(id, &t(2, 2))
    );
    assert!(out.protected(id, &t(2, 1)).contains("used by 1 run"));
}

#[test]
fn workspaces_sessions_and_defaults_protect_the_revisions_they_resolve_to() {
    let mut w = World::default();
    w.env(1, "WsPinned", true, 2)
        .env(2, "Session", true, 2)
        .env(3, "OrgDefault", true, 2);
    w.data.usage.workspaces.push(WorkspaceUsage {
        name: "ws".into(),
        environment: Some(oid(1)),
        revision_spec: Some(RevisionSpec::Some(oid(11))),
        session_revisions: vec![oid(21)],
        ..WorkspaceUsage::default()
    });
    w.data.usage.defaults.push(DefaultUsage {
        kind: DefaultKind::Organization,
        id: oid(91),
        name: "acme".into(),
        environment: oid(3),
        revision_spec: None,
    });
    let out = w.run(&Policy::default());
    assert_eq!(
        out.candidates(CategoryId::ArchivedEnvironments),
        vec![t(1, 2), t(2, 2), t(3, 1)]
    );
    assert!(
        out.protected(CategoryId::ArchivedEnvironments, &t(3, 2))
            .contains("default environment of organization 'acme'")
    );
}

#[test]
fn protect_patterns_and_the_grace_period_keep_tags() {
    let mut w = World::default();
    w.env(1, "Old", true, 3);
    w.tags[2].3 = Some(NOW - 30 * 60);
    w.tags[1].3 = None;
    let policy = Policy {
        protect: vec![regex::Regex::new(&format!(":{}-1$", oid(1))).unwrap()],
        ..Policy::default()
    };
    let out = w.run(&policy);
    assert_eq!(
        out.candidates(CategoryId::ArchivedEnvironments),
        vec![t(1, 2)],
        "unknown creation time gets no grace"
    );
    assert!(
        out.protected(CategoryId::ArchivedEnvironments, &t(1, 1))
            .starts_with("matches protect pattern")
    );
    assert_eq!(
        out.protected(CategoryId::ArchivedEnvironments, &t(1, 3)),
        "built 30 minutes ago (grace period 120 minutes, by image creation time)"
    );
}

#[test]
fn unreferenced_tags_are_those_no_record_names_but_never_buildcache() {
    let mut w = World::default();
    w.env(1, "Env", false, 1);
    w.tag(ENV_REPO, "buildcache", "bc")
        .tag(ENV_REPO, "manual-push", "mp")
        .tag(ENV_REPO, &t(1, 9), "gone-revision");
    w.tag("dominodatalab/other", "anything", "o");
    let out = w.run(&Policy::default());
    assert_eq!(
        out.candidates(CategoryId::UnreferencedTags),
        vec!["manual-push".to_string()]
    );
}

#[test]
fn a_source_that_is_down_makes_dependent_categories_unavailable() {
    let mut w = World::default();
    w.env(1, "Old", true, 1);
    let policy = Policy::default();
    // untagged-manifests needs a storage inventory, which this one is not: always unavailable
    // here (checked below), so the counts are of the other categories.
    let unavailable = |out: &Outcome| {
        CategoryId::ALL
            .into_iter()
            .filter(|c| *c != CategoryId::UntaggedManifests)
            .filter(|c| matches!(out.status(*c), CategoryStatus::Unavailable(_)))
            .count()
    };
    // Kubernetes failed: nobody can tell what runs, so nothing may be proposed.
    let mut s = w.sources();
    s.kubernetes = SourceState::Failed("cannot reach https://k8s:6443 (check kubernetes.kubeconfig)".into());
    let out = w.run_with(&policy, s);
    assert_eq!(unavailable(&out), 8);
    assert!(
        matches!(out.status(CategoryId::ArchivedEnvironments), CategoryStatus::Unavailable(r) if r.contains("kubernetes failed: cannot reach"))
    );
    // Kubernetes turned off on purpose: categories run with a note.
    let out = w.run(&Policy {
        without: [SourceKind::Kubernetes].into(),
        ..Policy::default()
    });
    assert_eq!(unavailable(&out), 0);
    assert!(
        matches!(out.status(CategoryId::UntaggedManifests), CategoryStatus::Unavailable(r) if r.contains("storage"))
    );
    assert_eq!(out.candidates(CategoryId::ArchivedEnvironments), vec![t(1, 1)]);
    assert!(out.get(CategoryId::ArchivedEnvironments).notes[0].contains("running workloads were not checked"));
    // Mongo failed: everything, broken tags included (usage protects them too).
    let mut s = w.sources();
    s.mongo = SourceState::Failed("connection refused".into());
    assert_eq!(unavailable(&w.run_with(&policy, s)), 8);
    // Mongo off: only broken-tags can run.
    let mut s = w.sources();
    s.mongo = SourceState::Disabled;
    let out = w.run_with(&policy, s);
    assert_eq!(unavailable(&out), 7);
    assert_eq!(out.status(CategoryId::BrokenTags), &CategoryStatus::Ok);
    // Keycloak failed: only the deactivated-owner category needs it.
    let mut s = w.sources();
    s.keycloak = SourceState::Failed("401".into());
    let out = w.run_with(&policy, s);
    assert_eq!(unavailable(&out), 1);
    assert!(matches!(
        out.status(CategoryId::DeactivatedOwnerEnvironments),
        CategoryStatus::Unavailable(_)
    ));
    // Registry scan incomplete: nothing.
    let mut s = w.sources();
    s.registry = SourceState::Failed("timeout".into());
    assert_eq!(unavailable(&w.run_with(&policy, s)), 8);
}

#[test]
fn an_ids_filter_restricts_candidates_to_the_listed_records() {
    let mut w = World::default();
    w.env(1, "A", true, 1).env(2, "B", true, 2);
    let filter =
        crate::model::ids_file::parse_ids_file("ids", &format!("environment:{}\nrevision:{}", oid(1), oid(22)))
            .unwrap();
    let out = w.run(&Policy {
        only_ids: Some(filter),
        ..Policy::default()
    });
    assert_eq!(out.candidates(CategoryId::ArchivedEnvironments), vec![t(1, 1), t(2, 2)]);
}

#[test]
fn a_pod_pinned_to_a_broken_manifests_digest_protects_its_broken_tag() {
    // The tag's manifest could not be read (so it has no revision), but a pod runs it by
    // digest: it is not a broken-tags candidate, it is protected.
    let mut w = World::default();
    w.env(1, "Spark 3", false, 1);
    let broken = crate::model::digest::sha256_digest(b"unreadable manifest");
    w.pod(&format!("registry:5000/{ENV_REPO}@{broken}"));
    let mut b = InventoryBuilder::new("registry:5000");
    let repo = b.repo(ENV_REPO);
    let d = b.digest(&broken);
    b.broken_tag(repo, "odd", Some(d), "reading manifest: HTTP 500: boom");
    let inv = b.finish();
    let results = evaluate(&inv, &w.sources(), &Policy::default(), NOW);
    let out = Outcome { inv, results };
    assert!(out.candidates(CategoryId::BrokenTags).is_empty());
    let why = out.protected(CategoryId::BrokenTags, "odd");
    assert!(why.contains("(by digest sha256:"), "{why}");
}

/// issue 11.9: the shell tool's environments file, `<envId> <rev> <rev> …`: the environment
/// is in scope, the listed revisions are kept in every category, with the file and line; a
/// tag sharing a kept revision's digest is kept with it; other environments are out of scope.
#[test]
fn an_environments_file_keeps_the_listed_revisions_in_every_category() {
    let mut w = World::default();
    // Archived env 1 with 4 revisions, live env 2 with 7 (old-revisions keeps 5), env 3 not listed.
    w.env(1, "A", true, 4).env(2, "B", false, 7).env(3, "C", true, 1);
    // A second tag on the digest of kept revision 1-2.
    w.tag(ENV_REPO, &format!("{}-extra", oid(1)), &t(1, 2));
    let text = format!("{} 2 3\n{} 1\n", oid(1), oid(2));
    let filter = crate::model::ids_file::parse_ids_file("environments", &text).unwrap();
    let out = w.run(&Policy {
        only_ids: Some(filter),
        ..Policy::default()
    });
    // (category, candidates, kept tag, reason it shows)
    let cases = [
        (
            CategoryId::ArchivedEnvironments,
            vec![t(1, 1), t(1, 4)],
            t(1, 3),
            format!(
                "revision 3 of environment {} is kept by the ids file (environments:1)",
                oid(1)
            ),
        ),
        (
            CategoryId::OldRevisions,
            vec![t(2, 2)],
            t(2, 1),
            format!(
                "revision 1 of environment {} is kept by the ids file (environments:2)",
                oid(2)
            ),
        ),
    ];
    for (cat, want, kept, why) in cases {
        assert_eq!(out.candidates(cat), want, "{cat:?}");
        let got = out.protected(cat, &kept);
        assert!(got.contains(&why), "{cat:?} {kept}: {got}");
    }
    let sibling = out.protected(CategoryId::ArchivedEnvironments, &format!("{}-extra", oid(1)));
    assert!(!sibling.is_empty(), "a digest sibling of a kept revision is kept");
    assert!(
        !out.candidates(CategoryId::ArchivedEnvironments).contains(&t(3, 1)),
        "an environment not in the file is out of scope"
    );
}

/// `domino-<envId>`: the legacy per-environment repository (leaked: the world keeps `&'static`).
fn legacy(env: u8) -> &'static str {
    Box::leak(format!("domino-{}", oid(env)).into_boxed_str())
}

impl Outcome {
    /// Candidates as `repository:tag`, sorted (legacy tags are only told apart by repository).
    fn refs(&self, id: CategoryId) -> Vec<String> {
        let mut v: Vec<String> = self
            .get(id)
            .candidates
            .iter()
            .map(|c| self.inv.tag_ref(c.tag))
            .collect();
        v.sort();
        v
    }
    fn protected_ref(&self, id: CategoryId, tag_ref: &str) -> String {
        let p = self
            .get(id)
            .protected
            .iter()
            .find(|p| self.inv.tag_ref(p.tag) == tag_ref);
        p.map(|p| p.protected_by.join(" | ")).unwrap_or_default()
    }
}

/// An environment whose `n` revisions live only in the legacy layout `domino-<env>:<i>`,
/// recorded in Mongo either in that layout or (`recorded_new`) as `<env>-<i>`.
fn legacy_env(w: &mut World, id: u8, name: &str, archived: bool, n: u8, recorded_new: bool) {
    w.env(id, name, archived, n);
    let new_tags: Vec<String> = (1..=n).map(|i| t(id, i)).collect();
    w.tags.retain(|x| !new_tags.contains(&x.1));
    for i in 1..=n {
        w.tag(legacy(id), &i.to_string(), &format!("legacy {id} {i}"));
        if !recorded_new {
            let r = w.data.revisions.iter_mut().find(|r| r.id == oid(id * 10 + i)).unwrap();
            r.tag = Some(i.to_string());
            r.repository = Some(format!("registry:5000/{}", legacy(id)));
        }
    }
}

#[test]
fn legacy_repositories_get_every_category_the_current_layout_has() {
    // issue 11.8: `domino-<envId>:<rev>` beside `dominodatalab/environment:<envId>-<rev>`.
    let mut w = World::default();
    legacy_env(&mut w, 1, "OldArchived", true, 2, false);
    legacy_env(&mut w, 2, "OldIdle", false, 2, true);
    legacy_env(&mut w, 3, "Revs", false, 4, false);
    // Env 3 is used (a recent run on revision 4, its active one), so it is not unused.
    w.data.usage.runs.push(RunUsage {
        environment: oid(3),
        revision: oid(34),
        last_used: Some(NOW - DAY),
        count: 1,
        in_flight: 0,
    });
    // A legacy repository of an environment Mongo does not know, and a stray tag in a known one.
    w.tag(legacy(9), "7", "unknown env");
    let out = w.run(&Policy {
        keep_revisions: 2,
        ..Policy::default()
    });
    let l = |env: u8, i: u8| format!("{}:{i}", legacy(env));
    assert_eq!(out.refs(CategoryId::ArchivedEnvironments), vec![l(1, 1), l(1, 2)]);
    assert_eq!(out.refs(CategoryId::UnusedEnvironments), vec![l(2, 1), l(2, 2)]);
    assert_eq!(out.refs(CategoryId::OldRevisions), vec![l(3, 1), l(3, 2)]);
    assert_eq!(out.refs(CategoryId::UnreferencedTags), vec![l(9, 7)]);
    let c = out.get(CategoryId::ArchivedEnvironments).candidates[0].clone();
    assert_eq!(
        c.object_id,
        Some(oid(1)),
        "a legacy tag belongs to the repository's environment"
    );
    // Env 3's active revision (4) and revision 3 are the newest 2; the run protects revision 4.
    assert!(out.protected_ref(CategoryId::OldRevisions, &l(3, 4)).is_empty());
    assert!(
        out.get(CategoryId::OrphanedReferences).records.is_empty(),
        "every legacy revision's image was found: none is an orphan"
    );
}

#[test]
fn legacy_tags_get_every_protection_the_current_layout_has() {
    let mut w = World::default();
    legacy_env(&mut w, 1, "Old", true, 6, false);
    // Pods: one by the legacy name, one by the current-layout name of revision 2 (the image
    // under another name: a mirror or an old registry host), one by digest.
    w.pod(&format!("registry:5000/{}:1", legacy(1)));
    w.pod(&format!(
        "old-registry.example.com/dominodatalab/environment:{}",
        t(1, 2)
    ));
    let digest = crate::model::digest::sha256_digest(b"legacy 1 3");
    w.pod(&format!("registry:5000/{}@{digest}", legacy(1)));
    // A workspace pinned to revision 4 (recorded in the legacy layout).
    w.data.usage.workspaces.push(WorkspaceUsage {
        name: "ws".into(),
        environment: Some(oid(1)),
        revision_spec: Some(RevisionSpec::Some(oid(14))),
        ..WorkspaceUsage::default()
    });
    // The shell tool's environments file keeps revision 5.
    let text = format!("{} 5\n", oid(1));
    let filter = crate::model::ids_file::parse_ids_file("environments", &text).unwrap();
    let out = w.run(&Policy {
        only_ids: Some(filter),
        protect: vec![regex::Regex::new(&format!("^{}:6$", legacy(1))).unwrap()],
        ..Policy::default()
    });
    let l = |i: u8| format!("{}:{i}", legacy(1));
    let id = CategoryId::ArchivedEnvironments;
    assert_eq!(out.refs(id), Vec::<String>::new());
    for (i, why) in [
        (1, "used by Pod domino-compute/run-1".to_string()),
        (2, "used by Pod domino-compute/run-1".to_string()),
        (3, format!("(by digest {digest})")),
        (4, "workspace 'ws'".to_string()),
        (
            5,
            format!(
                "revision 5 of environment {} is kept by the ids file (environments:1)",
                oid(1)
            ),
        ),
        (6, "matches protect pattern".to_string()),
    ] {
        let got = out.protected_ref(id, &l(i));
        assert!(got.contains(&why), "{}: {got}", l(i));
    }
}

#[test]
fn a_legacy_revision_whose_repository_was_not_scanned_is_no_orphan() {
    // The catalog is the only way to find legacy repositories; without it they are unseen.
    let mut w = World::default();
    legacy_env(&mut w, 1, "Old", false, 2, false);
    w.tags.retain(|x| x.0 != legacy(1));
    // A current-layout environment, so environment repositories were scanned; its revision
    // 2-1's image is really missing: that one is an orphan.
    w.env(2, "New", false, 2);
    w.tags.retain(|x| x.1 != t(2, 1));
    let out = w.run(&Policy::default());
    let o = out.get(CategoryId::OrphanedReferences);
    let docs: Vec<ObjectId> = o.records.iter().map(|r| r.document_id).collect();
    assert_eq!(docs, vec![oid(21)]);
    for rev in [oid(11), oid(12)] {
        let (_, why) = o
            .protected_records
            .iter()
            .find(|(r, _)| r.document_id == rev)
            .unwrap_or_else(|| panic!("{rev} not protected: {:?}", o.protected_records));
        assert!(why[0].contains("was not scanned"), "{why:?}");
    }
}

/// issue 11.3: a revision recorded under another registry host *and* path is proposed by its
/// environment's id prefix; every protection source must still find its tag by name.
#[test]
fn every_protection_source_finds_a_revision_recorded_under_another_repository() {
    type Arrange = fn(&mut World);
    let sources: [(&str, Arrange, &str); 8] = [
        (
            "run",
            |w| {
                w.data.usage.runs.push(RunUsage {
                    environment: oid(1),
                    revision: oid(11),
                    last_used: Some(NOW - DAY),
                    count: 1,
                    in_flight: 0,
                })
            },
            "used by 1 run",
        ),
        (
            "run in flight",
            |w| {
                w.data.usage.runs.push(RunUsage {
                    environment: oid(1),
                    revision: oid(11),
                    last_used: Some(NOW - 400 * DAY),
                    count: 1,
                    in_flight: 1,
                })
            },
            "in use now",
        ),
        (
            "workspace revision",
            |w| {
                w.data.usage.workspaces.push(WorkspaceUsage {
                    name: "ws".into(),
                    environment: Some(oid(1)),
                    revision_spec: Some(RevisionSpec::Some(oid(11))),
                    ..WorkspaceUsage::default()
                })
            },
            "workspace 'ws'",
        ),
        (
            "workspace session",
            |w| {
                w.data.usage.workspaces.push(WorkspaceUsage {
                    name: "ws".into(),
                    session_revisions: vec![oid(11)],
                    ..WorkspaceUsage::default()
                })
            },
            "workspace 'ws'",
        ),
        (
            "workspace compute environment",
            |w| {
                w.data.environments[0].active_revision = Some(oid(11));
                w.data.usage.workspaces.push(WorkspaceUsage {
                    name: "ws".into(),
                    compute_environment: Some(oid(1)),
                    ..WorkspaceUsage::default()
                })
            },
            "workspace 'ws'",
        ),
        (
            "running model version",
            |w| {
                w.data.models.push(Model {
                    id: oid(100),
                    name: "m".into(),
                    archived: false,
                    environment: None,
                    owner: None,
                });
                w.data.versions.push(ModelVersion {
                    id: oid(101),
                    model: oid(100),
                    revision: Some(oid(11)),
                    slugs: vec![],
                    repository: None,
                });
                w.data
                    .usage
                    .active_model_versions
                    .push(ActiveModelVersion { version: oid(101) });
            },
            "model version",
        ),
        (
            "project default",
            |w| {
                w.data.usage.defaults.push(DefaultUsage {
                    kind: DefaultKind::Project,
                    id: oid(90),
                    name: "p".into(),
                    environment: oid(1),
                    revision_spec: Some(RevisionSpec::Some(oid(11))),
                })
            },
            "default environment of project 'p'",
        ),
        (
            "pod under another host and path",
            |w| {
                w.pod(&format!("old-registry.example.com/legacy/environment:{}", t(1, 1)));
            },
            "used by Pod",
        ),
    ];
    for (source, arrange, why) in sources {
        let mut w = World::default();
        w.env(1, "Moved", true, 2);
        w.data.revisions[0].repository = Some("old-registry.example.com/legacy/environment".into());
        arrange(&mut w);
        let out = w.run(&Policy::default());
        let id = CategoryId::ArchivedEnvironments;
        assert_eq!(out.candidates(id), vec![t(1, 2)], "{source}");
        let got = out.protected(id, &t(1, 1));
        assert!(got.contains(why), "{source}: {got}");
    }
    // The active revision of a used, live environment, recorded elsewhere: the deactivated
    // owner's category proposes it by id prefix.
    let mut w = World::default();
    w.env(1, "Moved", false, 2);
    w.data.environments[0].private = true;
    w.data.revisions[1].repository = Some("old-registry.example.com/legacy/environment".into());
    w.users.push(KeycloakUser {
        username: "ann".into(),
        domino_id: Some(oid(200)),
        enabled: false,
    });
    w.data.usage.runs.push(RunUsage {
        environment: oid(1),
        revision: oid(11),
        last_used: Some(NOW - DAY),
        count: 1,
        in_flight: 0,
    });
    let out = w.run(&Policy::default());
    let got = out.protected(CategoryId::DeactivatedOwnerEnvironments, &t(1, 2));
    assert!(got.contains("active revision of environment 'Moved'"), "{got}");
}

#[test]
fn many_revisions_matching_no_tag_beside_their_environments_tags_are_noted() {
    let mut w = World::default();
    w.env(1, "Odd", false, 8);
    // Domino recorded every revision under a tag form the registry does not use.
    for r in &mut w.data.revisions {
        r.tag = Some(format!("{}:{}", r.tag.clone().unwrap(), "x"));
    }
    let out = w.run(&Policy::default());
    let notes = &out.get(CategoryId::OrphanedReferences).notes;
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("8 of 8 built revisions match no registry tag")),
        "{notes:?}"
    );
    // A normal world has no such note.
    let mut w = World::default();
    w.env(1, "Fine", false, 8);
    let out = w.run(&Policy::default());
    assert!(out.get(CategoryId::OrphanedReferences).notes.is_empty());
}

#[test]
fn scheduled_jobs_and_app_versions_protect_every_revision_of_their_environment() {
    // issue 11.7: which revision they pin is not recorded (domain.md), so all of them.
    for kind in [DefaultKind::SchedulerJob, DefaultKind::AppVersion] {
        let mut w = World::default();
        w.env(1, "Job env", true, 3).env(2, "Org env", true, 3);
        w.data.usage.defaults.push(DefaultUsage {
            kind,
            id: oid(90),
            name: "nightly".into(),
            environment: oid(1),
            revision_spec: None,
        });
        // An organization default still protects only the active revision.
        w.data.usage.defaults.push(DefaultUsage {
            kind: DefaultKind::Organization,
            id: oid(91),
            name: "acme".into(),
            environment: oid(2),
            revision_spec: None,
        });
        let out = w.run(&Policy::default());
        let id = CategoryId::ArchivedEnvironments;
        assert_eq!(out.candidates(id), vec![t(2, 1), t(2, 2)], "{kind:?}");
        for i in 1..=3 {
            let why = out.protected(id, &t(1, i));
            assert!(why.contains("'nightly'"), "{kind:?} {i}: {why}");
        }
    }
}

/// The orphaned-references records of an outcome, by document id.
fn orphan_ids(out: &Outcome) -> Vec<ObjectId> {
    let o = out.get(CategoryId::OrphanedReferences);
    o.records.iter().map(|r| r.document_id).collect()
}

/// Why the orphaned-references category kept record `id` ("" when it did not).
fn kept_why(out: &Outcome, id: ObjectId) -> String {
    let o = out.get(CategoryId::OrphanedReferences);
    o.protected_records
        .iter()
        .find(|(r, _)| r.document_id == id)
        .map(|(_, why)| why.join(" | "))
        .unwrap_or_default()
}

/// Review of issue 11: a record is an orphan only when the scan looked everywhere its image
/// could be: catalog read, a current-layout repository with tags, the recorded repository.
#[test]
fn a_revision_whose_image_may_be_where_the_scan_did_not_look_is_no_orphan() {
    let base = || {
        let mut w = World::default();
        w.env(1, "E", false, 3);
        // Revision 1's image is missing; 3 is active.
        w.tags.retain(|x| x.1 != t(1, 1));
        w
    };
    let w = base();
    assert_eq!(
        orphan_ids(&w.run(&Policy::default())),
        vec![oid(11)],
        "the control case"
    );
    // The catalog was not read: legacy repositories could hold it.
    let mut inv = w.inventory();
    inv.catalog_read = false;
    let out = Outcome {
        results: evaluate(&inv, &w.sources(), &Policy::default(), NOW),
        inv,
    };
    assert!(orphan_ids(&out).is_empty());
    assert!(
        kept_why(&out, oid(11)).contains("catalog was not read"),
        "{}",
        kept_why(&out, oid(11))
    );
    // Recorded in a repository the scan did not read.
    // (On the scanned registry's own host, so only the repository check can keep it.)
    let mut w = base();
    w.data.revisions[0].repository = Some("registry:5000/acme/environment".into());
    let out = w.run(&Policy::default());
    assert!(orphan_ids(&out).is_empty());
    assert!(
        kept_why(&out, oid(11)).contains("acme/environment was not scanned"),
        "{}",
        kept_why(&out, oid(11))
    );
    // The same without a host.
    w.data.revisions[0].repository = Some("acme/environment".into());
    let out = w.run(&Policy::default());
    assert!(orphan_ids(&out).is_empty());
    assert!(kept_why(&out, oid(11)).contains("acme/environment was not scanned"));
    // Only legacy repositories have tags: records in the current layout cannot be judged.
    let mut w = World::default();
    legacy_env(&mut w, 2, "Legacy", false, 2, false);
    w.data.revisions.push(rev(31, 3, &t(3, 1)));
    let out = w.run(&Policy::default());
    assert!(orphan_ids(&out).is_empty(), "{:?}", orphan_ids(&out));
    assert!(kept_why(&out, oid(31)).contains("no current-layout environment repository"));
}

/// Review of issue 11: a revision recorded with a bare tag and no repository is still found
/// (as `<env>-<tag>`) by the protections, as the id-prefix lookup proposes it.
#[test]
fn a_bare_recorded_tag_is_protected_under_its_current_layout_name() {
    let mut w = World::default();
    w.env(1, "Bare", true, 2);
    w.data.revisions[0].tag = Some("1".into());
    w.data.revisions[0].repository = None;
    w.data.usage.workspaces.push(WorkspaceUsage {
        name: "ws".into(),
        environment: Some(oid(1)),
        revision_spec: Some(RevisionSpec::Some(oid(11))),
        ..WorkspaceUsage::default()
    });
    let out = w.run(&Policy::default());
    assert_eq!(out.candidates(CategoryId::ArchivedEnvironments), vec![t(1, 2)]);
    assert!(
        out.protected(CategoryId::ArchivedEnvironments, &t(1, 1))
            .contains("workspace 'ws'")
    );
    assert!(out.get(CategoryId::OrphanedReferences).records.is_empty());
}

/// Issue 11 (recorded host): a record whose recorded repository names another registry host is
/// no orphan, unless that host is the scanned one, a `registry.aliases` entry, or named by a
/// record whose image the scan found.
#[test]
fn a_record_on_another_registry_host_is_no_orphan_unless_that_host_is_known_to_be_this_one() {
    let old = format!("old.example.com:5000/{ENV_REPO}");
    let base = || {
        let mut w = World::default();
        w.env(1, "E", false, 3);
        // Revision 1's image is missing; 3 is active.
        w.tags.retain(|x| x.1 != t(1, 1));
        w
    };
    // The control: recorded on the scanned host (registry:5000), or with no host at all.
    assert_eq!(orphan_ids(&base().run(&Policy::default())), vec![oid(11)]);
    let mut w = base();
    w.data.revisions[0].repository = Some(ENV_REPO.into());
    assert_eq!(orphan_ids(&w.run(&Policy::default())), vec![oid(11)], "no host");
    // Another host nothing found names: protected, the reason names host and setting.
    let mut w = base();
    w.data.revisions[0].repository = Some(old.clone());
    let out = w.run(&Policy::default());
    assert!(orphan_ids(&out).is_empty(), "{:?}", orphan_ids(&out));
    let why = kept_why(&out, oid(11));
    assert!(
        why.contains("names registry host old.example.com:5000") && why.contains("registry.aliases"),
        "{why}"
    );
    // Named in registry.aliases (case does not matter): an orphan again.
    let aliased = Policy {
        registry_aliases: vec!["old.example.com:5000".into()],
        ..Policy::default()
    };
    assert_eq!(orphan_ids(&w.run(&aliased)), vec![oid(11)]);
    let mut upper = base();
    upper.data.revisions[0].repository = Some(format!("OLD.Example.com:5000/{ENV_REPO}"));
    assert_eq!(orphan_ids(&upper.run(&aliased)), vec![oid(11)]);
    // Another record on that host whose image was found: the host is this registry.
    let mut w = base();
    w.data.revisions[0].repository = Some(old.clone());
    w.data.revisions[1].repository = Some(old.clone());
    assert_eq!(orphan_ids(&w.run(&Policy::default())), vec![oid(11)]);
    // A model version on another host, its image missing: protected the same way.
    let mut w = World::default();
    w.env(1, "Base", false, 1);
    w.tag(MODEL_REPO, "unrelated", "u");
    w.data.versions.push(ModelVersion {
        id: oid(51),
        model: oid(50),
        revision: None,
        slugs: vec![format!("{}-v1", oid(50))],
        repository: Some("old.example.com:5000/dominodatalab/model".into()),
    });
    let out = w.run(&Policy::default());
    assert!(orphan_ids(&out).is_empty(), "{:?}", orphan_ids(&out));
    assert!(kept_why(&out, oid(51)).contains("names registry host old.example.com:5000"));
    assert_eq!(orphan_ids(&w.run(&aliased)), vec![oid(51)]);
}
