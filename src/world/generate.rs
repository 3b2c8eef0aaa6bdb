//! A deterministic, consistent Domino world: registry tags, the Mongo documents that name them
//! (also as [`DominoData`]), running pods and Keycloak users, plus the ground truth of what every
//! category must propose and protect — recorded by construction, trap by trap, not computed by
//! the core.
//!
//! One *cycle* of the world holds one environment or model per role below; [`WorldSize`]
//! repeats cycles. With `R` revisions per environment and `K` = [`KEEP_REVISIONS`]:
//!
//! | role | environment | expected |
//! |---|---|---|
//! | run | global, a run on its active revision; one failed build (no image); owned by a deactivated user (global: not selected); cycle 0: revision 1 has no image (orphaned reference) | old revisions 1..R-K |
//! | workspace | global, a workspace pinned to revision 1 (`SomeRevision`) | old 2..R-K; rev 1 protected |
//! | job / org / app / pref | global, a default of a scheduler job, organization, live app, user preference | old 1..R-K; for the job and the app all protected (any revision may be pinned) |
//! | unused | global; only an archived project, a deleted workspace, a reusable-volume run and an archived app name it; active revision cloned from revision 1 | unused 1..R (goes whole); old 2..R-K; rev 1 clone source |
//! | archived-alias | archived; an unreferenced alias tag shares revision R's digest | archived 1..R-1; rev R and the alias protected (siblings) |
//! | archived-running | archived; revision 1 runs in a pod referenced by digest only | archived 2..R; rev 1 protected by the pod |
//! | archived-source | archived; revision 1 is the clone source of `clone`'s only revision | archived 2..R; rev 1 clone source |
//! | clone | global, one revision cloned from `archived-source`, used by a run | — |
//! | private-leaver | private, owner disabled in Keycloak, unused | deactivated and unused 1..R (goes whole) |
//! | private-project | private, owner disabled, a project default | deactivated 1..R-1; rev R protected by the project |
//! | private-kept | private, owner enabled, used by a run | old 1..R-K |
//! | multiarch | archived, one revision that is a multi-arch index | archived: the index tag |
//! | legacy-archived | archived, images in `domino-<envId>:<i>` and recorded so in Mongo | archived 1..R; old 1..R-K |
//! | legacy-pinned | global, images only in `domino-<envId>:<i>`, recorded as `<envId>-<i>`; a workspace pinned to revision 1 | old 2..R-K; rev 1 protected |
//!
//! Models (built on the `run` environment's active revision, so layers are shared across
//! repositories): `deployed` (latest version running by sagas; cycle 0: a version whose image
//! is missing), `archived`, `archived-short` (slugs stored as `<modelId>-v<N>`),
//! `archived-deployed` (latest version still running). Unreferenced tags: two environment tags
//! and one model tag of unknown ids (one environment tag in use by a pod), and a broken tag.

use super::{ImageSpec, LayerSpec, MediaFlavor, TagSpec, TagTarget, splitmix, tag_digest};
use crate::model::ObjectId;
use crate::model::domino::{
    ActiveModelVersion, DefaultKind, DefaultUsage, DominoData, EnvRevision, Environment, Model, ModelVersion,
    RevisionSpec, RunUsage, User, WorkspaceUsage,
};
use crate::model::users::KeycloakUser;
use mongodb::bson::{DateTime, Document, doc, oid::ObjectId as BsonId};
use std::collections::{BTreeMap, BTreeSet};

/// The world's "now" (Unix seconds); every image and record is older.
pub const WORLD_NOW: i64 = 1_760_000_000;
/// The `--keep-revisions` the ground truth assumes.
pub const KEEP_REVISIONS: usize = 2;
/// The host Domino records in image repositories and pods use.
pub const REGISTRY_HOST: &str = "docker-registry:5000";
const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorldSize {
    /// Repetitions of the role set (see the module docs).
    pub cycles: usize,
    /// Revisions per environment (≥ [`KEEP_REVISIONS`] + 2).
    pub revisions: usize,
    /// Versions per model (≥ 2).
    pub versions: usize,
}

impl WorldSize {
    /// About 130 tags of a few KB: pushes in seconds.
    pub const SMALL: WorldSize = WorldSize {
        cycles: 2,
        revisions: 4,
        versions: 3,
    };
    /// A few thousand tags, for the bundled demo (never pushed).
    pub const DEMO: WorldSize = WorldSize {
        cycles: 36,
        revisions: 6,
        versions: 4,
    };
}

/// A pod to create in Kubernetes (status patched to `phase`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSpec {
    pub name: String,
    /// `(container name, image)`; images name the registry by [`REGISTRY_HOST`], by tag or digest.
    pub containers: Vec<(String, String)>,
    pub phase: String,
}

/// What the core must answer for this world with `--keep-revisions` [`KEEP_REVISIONS`], no
/// `--unused-since-days` and no grace period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Category id → `repository:tag` of every candidate.
    pub candidates: BTreeMap<String, BTreeSet<String>>,
    /// `(category id, repository:tag, text one of its protection reasons contains)`.
    pub protected: Vec<(String, String, String)>,
    /// `(collection, document id)` of orphaned Mongo records.
    pub orphans: BTreeSet<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    pub size: WorldSize,
    pub prefix: String,
    pub now: i64,
    pub tags: Vec<TagSpec>,
    /// `(repository, tag)` whose config blob the seeding removes after the push (broken tags).
    pub broken: Vec<(String, String)>,
    /// Mongo documents per collection, as Domino stores them.
    pub mongo: BTreeMap<String, Vec<Document>>,
    /// The same records as the Mongo adapter reads them.
    pub domino: DominoData,
    pub pods: Vec<PodSpec>,
    pub keycloak_users: Vec<KeycloakUser>,
    pub expected: Expected,
}

impl World {
    pub fn env_repo(&self) -> String {
        format!("{}/environment", self.prefix)
    }
    pub fn model_repo(&self) -> String {
        format!("{}/model", self.prefix)
    }
    pub fn spec(&self, repository: &str, tag: &str) -> Option<&TagSpec> {
        self.tags.iter().find(|t| t.repository == repository && t.tag == tag)
    }
}

/// Builds the world for `seed`; equal inputs give equal worlds.
pub fn generate(seed: u64, size: WorldSize) -> World {
    assert!(size.revisions >= KEEP_REVISIONS + 2 && size.versions >= 2);
    let mut g = Gen {
        seed,
        counter: 0,
        w: World {
            seed,
            size,
            prefix: "dominodatalab".into(),
            now: WORLD_NOW,
            tags: vec![],
            broken: vec![],
            mongo: BTreeMap::new(),
            domino: DominoData::default(),
            pods: vec![],
            keycloak_users: vec![],
            expected: Expected::default(),
        },
        base: LayerSpec {
            seed: splitmix(seed ^ 0xBA5E),
            size: 40_000,
        },
    };
    for c in 0..size.cycles {
        g.cycle(c);
    }
    g.once();
    for v in g.w.mongo.values_mut() {
        v.sort_by_key(|d| d.get_object_id("_id").map(|o| o.bytes()).unwrap_or_default());
    }
    g.w
}

/// One environment as the generator made it.
struct Env {
    id: ObjectId,
    /// Revision ids and tags, oldest first.
    revs: Vec<(ObjectId, String)>,
    env_layer: LayerSpec,
}

struct Gen {
    seed: u64,
    counter: u32,
    w: World,
    base: LayerSpec,
}

const ENV_NAMES: [&str; 10] = [
    "Python 3.11 Data Science",
    "R 4.4 Tidyverse",
    "Spark 3.5",
    "PyTorch 2.4 GPU",
    "TensorFlow 2.17",
    "Jupyter Minimal",
    "SAS Analytics",
    "Julia 1.11",
    "Ray 2.30",
    "VS Code Remote",
];
const MODEL_NAMES: [&str; 6] = ["churn", "fraud-score", "demand", "nlp-intents", "ltv", "risk"];

fn bson(id: ObjectId) -> BsonId {
    BsonId::from_bytes(id.bytes())
}

impl Gen {
    fn rand(&mut self) -> u64 {
        self.counter += 1;
        splitmix(self.seed ^ (u64::from(self.counter) << 20) ^ 0x5EED)
    }

    /// ObjectIds grow with creation order (4-byte counter "timestamp"), the rest from the seed.
    fn oid(&mut self) -> ObjectId {
        self.counter += 1;
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&(0x6500_0000u32 + self.counter).to_be_bytes());
        b[4..].copy_from_slice(&splitmix(self.seed ^ u64::from(self.counter)).to_be_bytes()[..8]);
        ObjectId::from_bytes(b)
    }

    fn insert(&mut self, coll: &str, d: Document) {
        self.w.mongo.entry(coll.to_string()).or_default().push(d);
    }

    fn date(&self, days_ago: i64) -> DateTime {
        DateTime::from_millis((self.w.now - days_ago * DAY) * 1000)
    }

    fn env_ref(&self, tag: &str) -> String {
        format!("{}:{tag}", self.w.env_repo())
    }

    fn model_ref(&self, tag: &str) -> String {
        format!("{}:{tag}", self.w.model_repo())
    }

    fn expect(&mut self, category: &str, tag_ref: String) {
        self.w
            .expected
            .candidates
            .entry(category.to_string())
            .or_default()
            .insert(tag_ref);
    }

    fn expect_protected(&mut self, category: &str, tag_ref: String, why: &str) {
        self.w
            .expected
            .protected
            .push((category.to_string(), tag_ref, why.to_string()));
    }

    fn user(&mut self, login: &str, name: &str, enabled: bool) -> ObjectId {
        let id = self.oid();
        self.insert(
            "users",
            doc! { "_id": bson(id), "fullName": name, "loginId": { "id": login } },
        );
        self.w.domino.users.push(User {
            id,
            name: name.into(),
            login: login.into(),
        });
        self.w.keycloak_users.push(KeycloakUser {
            username: login.into(),
            domino_id: Some(id),
            enabled,
        });
        id
    }

    fn image(&self, layers: Vec<LayerSpec>, age_days: i64, label: String) -> ImageSpec {
        ImageSpec {
            layers,
            created: self.w.now - age_days * DAY,
            flavor: if label.len().is_multiple_of(3) {
                MediaFlavor::Oci
            } else {
                MediaFlavor::Docker
            },
            architecture: "amd64".into(),
            label,
        }
    }

    /// An environment with `n` revisions; `pushed(i)` says whether revision `i` (1-based) has
    /// an image; a failed build is appended when `failed`. The active revision is the newest
    /// built one.
    #[allow(clippy::too_many_arguments)]
    fn env(
        &mut self,
        name: &str,
        archived: bool,
        private: bool,
        owner: ObjectId,
        n: usize,
        pushed: impl Fn(usize) -> bool,
        failed: bool,
        clone_of: Option<(usize, ObjectId)>,
    ) -> Env {
        let id = self.oid();
        let env_layer = LayerSpec {
            seed: splitmix(self.seed ^ 0xE0 ^ u64::from(self.counter)),
            size: 8_000 + (self.rand() % 8) * 1_000,
        };
        let mut revs = vec![];
        let age0 = 300 + (self.rand() % 60) as i64;
        for i in 1..=n + usize::from(failed) {
            let rid = self.oid();
            let tag = format!("{id}-{i}");
            let built = i <= n;
            let cloned = clone_of.filter(|(at, _)| *at == i).map(|(_, src)| src);
            let mut d = doc! {
                "_id": bson(rid), "environmentId": bson(id),
                "metadata": { "dockerImageName": { "repository": format!("{REGISTRY_HOST}/{}", self.w.env_repo()), "tag": &tag }, "isBuilt": built, "authorId": bson(owner) },
            };
            if let Some(src) = cloned {
                d.insert("clonedEnvironmentRevisionId", bson(src));
            }
            self.insert("environment_revisions", d);
            self.w.domino.revisions.push(EnvRevision {
                id: rid,
                environment: id,
                tag: Some(tag.clone()),
                repository: Some(format!("{REGISTRY_HOST}/{}", self.w.env_repo())),
                built,
                author: Some(owner),
                cloned_from: cloned,
            });
            if built && pushed(i) {
                let rev_layer = LayerSpec {
                    seed: splitmix(self.seed ^ 0x4E ^ u64::from(self.counter)),
                    size: 2_000 + (self.rand() % 6) * 700,
                };
                let img = self.image(vec![self.base, env_layer, rev_layer], age0 - 25 * i as i64, tag.clone());
                self.w.tags.push(TagSpec {
                    repository: self.w.env_repo(),
                    tag: tag.clone(),
                    target: TagTarget::Image(img),
                });
            }
            if built {
                revs.push((rid, tag));
            }
        }
        let active = revs.last().map(|r| r.0);
        self.insert(
            "environments_v2",
            doc! {
                "_id": bson(id), "name": name, "isArchived": archived,
                "activeRevisionId": active.map(bson), "ownerId": bson(owner),
                "visibility": if private { "Private" } else { "Public" },
            },
        );
        self.w.domino.environments.push(Environment {
            id,
            name: name.into(),
            archived,
            active_revision: active,
            owner: Some(owner),
            private,
        });
        Env { id, revs, env_layer }
    }

    /// Expectations for `old-revisions` on an environment whose revisions all have images
    /// except those listed in `missing` (1-based); `protected` maps a revision to a reason.
    fn expect_old(&mut self, e: &Env, missing: &[usize], protected: &[(usize, &str)]) {
        let old = e.revs.len().saturating_sub(KEEP_REVISIONS);
        for i in 1..=old {
            if missing.contains(&i) {
                continue;
            }
            let r = self.env_ref(&e.revs[i - 1].1);
            match protected.iter().find(|(at, _)| *at == i) {
                Some((_, why)) => self.expect_protected("old-revisions", r, why),
                None => self.expect("old-revisions", r),
            }
        }
    }

    /// Expectations for a whole-environment category: every revision candidate except `protected`.
    fn expect_all(&mut self, category: &str, e: &Env, protected: &[(usize, &str)]) {
        for i in 1..=e.revs.len() {
            let r = self.env_ref(&e.revs[i - 1].1);
            match protected.iter().find(|(at, _)| *at == i) {
                Some((_, why)) => self.expect_protected(category, r, why),
                None => self.expect(category, r),
            }
        }
    }

    fn run(&mut self, e: &Env, days_ago: i64, reusable: bool) {
        let id = self.oid();
        let (rid, _) = e.revs.last().cloned().expect("a built revision");
        let t = if reusable {
            "RunReusableVolumeSpecification"
        } else {
            "RunVolumeSpecification"
        };
        self.insert(
            "runs",
            doc! {
                "_id": bson(id), "environmentId": bson(e.id), "environmentRevisionId": bson(rid),
                "started": self.date(days_ago + 1), "completed": self.date(days_ago), "status": "Succeeded",
                "volumeSpecification": { "_t": t },
            },
        );
        if !reusable {
            self.w.domino.usage.runs.push(RunUsage {
                environment: e.id,
                revision: rid,
                last_used: Some(self.w.now - days_ago * DAY),
                count: 1,
                in_flight: 0,
            });
        }
    }

    fn default_usage(&mut self, kind: DefaultKind, name: &str, env: ObjectId) -> ObjectId {
        let id = self.oid();
        let (coll, d) = match kind {
            DefaultKind::Project => (
                "projects",
                doc! { "_id": bson(id), "name": name, "isArchived": false, "overrideV2EnvironmentId": bson(env), "defaultEnvironmentRevisionSpec": "ActiveRevision" },
            ),
            DefaultKind::SchedulerJob => (
                "scheduler_jobs",
                doc! { "_id": bson(id), "jobName": name, "jobDataPlain": { "overrideEnvironmentId": bson(env) } },
            ),
            DefaultKind::Organization => (
                "organizations",
                doc! { "_id": bson(id), "name": name, "defaultV2EnvironmentId": bson(env) },
            ),
            DefaultKind::AppVersion => (
                "app_versions",
                doc! { "_id": bson(id), "appId": bson(self.w.domino.users[0].id), "versionNumber": 1, "environmentId": bson(env) },
            ),
            DefaultKind::UserPreference => (
                "userPreferences",
                doc! { "_id": bson(id), "userId": bson(self.w.domino.users[0].id), "defaultEnvironmentId": bson(env) },
            ),
        };
        self.insert(coll, d);
        self.w.domino.usage.defaults.push(DefaultUsage {
            kind,
            id,
            name: match kind {
                DefaultKind::AppVersion => "1".into(),
                DefaultKind::UserPreference => self.w.domino.users[0].id.to_string(),
                _ => name.into(),
            },
            environment: env,
            revision_spec: (kind == DefaultKind::Project).then_some(RevisionSpec::Active),
        });
        id
    }

    fn cycle(&mut self, c: usize) {
        let r = self.w.size.revisions;
        let nm = |i: usize| format!("{} #{c}", ENV_NAMES[(i + c) % ENV_NAMES.len()]);
        let owner = self.user(&format!("owner{c}"), &format!("Olivia Owner {c}"), true);
        let leaver = self.user(&format!("leaver{c}"), &format!("Lee Leaver {c}"), false);
        let keeper = self.user(&format!("keeper{c}"), &format!("Kim Keeper {c}"), true);

        // run: global, owned by a deactivated user (not private, so not selected).
        let orphan: &[usize] = if c == 0 { &[1] } else { &[] };
        let run_env = self.env(&nm(0), false, false, leaver, r, |i| !orphan.contains(&i), true, None);
        self.run(&run_env, 3, false);
        self.expect_old(&run_env, orphan, &[]);
        if c == 0 {
            let id = self
                .w
                .domino
                .revisions
                .iter()
                .find(|x| x.tag.as_deref() == Some(&run_env.revs[0].1))
                .unwrap()
                .id;
            self.w
                .expected
                .orphans
                .insert(("environment_revisions".into(), id.to_string()));
        }

        // workspace pinned to revision 1.
        let ws_env = self.env(&nm(1), false, false, owner, r, |_| true, false, None);
        let ws = self.oid();
        let ws_name = format!("ws-{c}");
        let pin = ws_env.revs[0].0;
        self.insert("workspace", doc! {
            "_id": bson(ws), "name": &ws_name, "state": "Stopped", "ownerId": bson(owner), "stateUpdatedAt": self.date(5),
            "configTemplate": { "environmentId": bson(ws_env.id), "environmentRevisionSpec": format!("SomeRevision({pin})") },
        });
        let sess = self.oid();
        self.insert("workspace_session", doc! { "_id": bson(sess), "workspaceId": bson(ws), "environmentId": bson(ws_env.id), "rawExecutionDisplayStatus": "Stopped" });
        self.w.domino.usage.workspaces.push(WorkspaceUsage {
            id: Some(ws),
            name: ws_name.clone(),
            environment: Some(ws_env.id),
            revision_spec: Some(RevisionSpec::Some(pin)),
            compute_environment: None,
            last_change: Some(self.w.now - 5 * DAY),
            session_environments: vec![ws_env.id],
            session_revisions: vec![],
        });
        self.expect_old(&ws_env, &[], &[(1, &format!("workspace '{ws_name}'"))]);

        // defaults of a job, an organization, a live app, a user preference.
        let product = self.oid();
        self.insert("model_products", doc! { "_id": bson(product), "isArchived": false });
        let dead_product = self.oid();
        self.insert("model_products", doc! { "_id": bson(dead_product), "isArchived": true });
        for (i, kind) in [
            DefaultKind::SchedulerJob,
            DefaultKind::Organization,
            DefaultKind::AppVersion,
            DefaultKind::UserPreference,
        ]
        .into_iter()
        .enumerate()
        {
            let e = self.env(&nm(2 + i), false, false, owner, r, |_| true, false, None);
            let id = self.default_usage(
                kind,
                &format!("{}-{c}", kind.describe().rsplit(' ').next().unwrap_or("x")),
                e.id,
            );
            if kind == DefaultKind::AppVersion {
                let apps = self.w.mongo.get_mut("app_versions").unwrap();
                apps.last_mut().unwrap().insert("appId", bson(product));
                let _ = id;
            }
            // Jobs and app versions may pin any revision (none recorded): all are protected.
            let pinned: Vec<(usize, &str)> = match kind {
                DefaultKind::SchedulerJob | DefaultKind::AppVersion => {
                    (1..=r).map(|i| (i, "which may pin any revision of it")).collect()
                }
                _ => vec![],
            };
            self.expect_old(&e, &[], &pinned);
        }

        // unused: only dead references; active revision cloned from revision 1.
        let unused = self.env(&nm(6), false, false, owner, r, |_| true, false, None);
        let (first, last) = (unused.revs[0].0, r);
        // Clone provenance recorded after the fact (the generator creates revisions in order).
        let active = unused.revs[last - 1].0;
        self.set_clone(active, first);
        let p = self.oid();
        self.insert("projects", doc! { "_id": bson(p), "name": format!("old-project-{c}"), "isArchived": true, "overrideV2EnvironmentId": bson(unused.id) });
        let dw = self.oid();
        self.insert("workspace", doc! { "_id": bson(dw), "name": format!("gone-{c}"), "state": "Deleted", "configTemplate": { "environmentId": bson(unused.id), "environmentRevisionSpec": "ActiveRevision" } });
        self.run(&unused, 1, true);
        let av = self.oid();
        self.insert(
            "app_versions",
            doc! { "_id": bson(av), "appId": bson(dead_product), "versionNumber": 2, "environmentId": bson(unused.id) },
        );
        // An unused environment goes whole, active revision included, and with it the clone
        // source of its active revision; old-revisions still keeps the active one (and so its
        // clone source).
        self.expect_all("unused-environments", &unused, &[]);
        self.expect_old(&unused, &[], &[(1, "clone source of kept revision")]);

        // archived, with an unreferenced alias on revision R's digest.
        let alias_env = self.env(&nm(7), true, false, owner, r, |_| true, false, None);
        let alias = format!("release-{c}");
        let target = self
            .w
            .tags
            .iter()
            .find(|t| t.tag == alias_env.revs[r - 1].1)
            .unwrap()
            .target
            .clone();
        self.w.tags.push(TagSpec {
            repository: self.w.env_repo(),
            tag: alias.clone(),
            target,
        });
        let why = format!("shares digest with tag {}", self.env_ref(&alias));
        self.expect_all("archived-environments", &alias_env, &[(r, &why)]);
        self.expect_old(&alias_env, &[], &[]);
        let why = format!("shares digest with tag {}", self.env_ref(&alias_env.revs[r - 1].1));
        self.expect_protected("unreferenced-tags", self.env_ref(&alias), &why);

        // archived, revision 1 running in a pod by digest only.
        let running = self.env(&nm(8), true, false, owner, r, |_| true, false, None);
        let digest = tag_digest(&self.w.spec(&self.w.env_repo(), &running.revs[0].1).unwrap().target);
        let pod = format!("run-{c}-legacy");
        self.w.pods.push(PodSpec {
            name: pod.clone(),
            containers: vec![("run".into(), format!("{REGISTRY_HOST}/{}@{digest}", self.w.env_repo()))],
            phase: "Running".into(),
        });
        let why = format!("/{pod} container run (by digest {digest})");
        self.expect_all("archived-environments", &running, &[(1, &why)]);
        self.expect_old(&running, &[], &[(1, &why)]);

        // archived clone source, and the live clone.
        let source = self.env(&nm(9), true, false, owner, r, |_| true, false, None);
        let clone = self.env(
            &format!("{} (clone)", nm(9)),
            false,
            false,
            owner,
            1,
            |_| true,
            false,
            Some((1, source.revs[0].0)),
        );
        self.run(&clone, 2, false);
        let why = "clone source of kept revision";
        self.expect_all("archived-environments", &source, &[(1, why)]);
        self.expect_old(&source, &[], &[(1, why)]);

        // private environments.
        let gone = self.env(
            &format!("{} (private)", nm(3)),
            false,
            true,
            leaver,
            r,
            |_| true,
            false,
            None,
        );
        self.expect_all("deactivated-owner-environments", &gone, &[]);
        self.expect_all("unused-environments", &gone, &[]);
        self.expect_old(&gone, &[], &[]);
        let proj_env = self.env(
            &format!("{} (private)", nm(4)),
            false,
            true,
            leaver,
            r,
            |_| true,
            false,
            None,
        );
        let proj_name = format!("churn-project-{c}");
        self.default_usage(DefaultKind::Project, &proj_name, proj_env.id);
        self.expect_all(
            "deactivated-owner-environments",
            &proj_env,
            &[(r, &format!("default environment of project '{proj_name}'"))],
        );
        self.expect_old(&proj_env, &[], &[]);
        let kept = self.env(
            &format!("{} (private)", nm(5)),
            false,
            true,
            keeper,
            r,
            |_| true,
            false,
            None,
        );
        self.run(&kept, 10, false);
        self.expect_old(&kept, &[], &[]);

        // archived multi-arch index.
        let multi = self.env(
            &format!("{} (multi-arch)", nm(2)),
            true,
            false,
            owner,
            1,
            |_| false,
            false,
            None,
        );
        let arch = |g: &mut Gen, a: &str| {
            let l = LayerSpec {
                seed: g.rand(),
                size: 5_000,
            };
            ImageSpec {
                architecture: a.into(),
                flavor: MediaFlavor::Oci,
                ..g.image(vec![g.base, multi.env_layer, l], 40, format!("{}-{a}", multi.revs[0].1))
            }
        };
        let images = vec![arch(self, "amd64"), arch(self, "arm64")];
        self.w.tags.push(TagSpec {
            repository: self.w.env_repo(),
            tag: multi.revs[0].1.clone(),
            target: TagTarget::Index {
                flavor: MediaFlavor::Oci,
                images,
            },
        });
        self.expect_all("archived-environments", &multi, &[]);

        self.legacy(c, owner);
        self.models(c, &run_env, owner);
        self.strays(c);
    }

    /// Legacy layout (older installs, kept on upgrade): `domino-<envId>:<revision>`. An
    /// archived environment recorded in that layout, and a live one whose records name the
    /// current layout while its images are still only in the legacy repository, with a
    /// workspace pinned to revision 1.
    fn legacy(&mut self, c: usize, owner: ObjectId) {
        let r = self.w.size.revisions;
        let name = |what: &str| format!("Legacy {what} #{c}");
        let archived = self.env(&name("archived"), true, false, owner, r, |_| true, false, None);
        let refs = self.move_to_legacy(&archived, true);
        for x in &refs {
            self.expect("archived-environments", x.clone());
        }
        for x in &refs[..r - KEEP_REVISIONS] {
            self.expect("old-revisions", x.clone());
        }
        let live = self.env(&name("pinned"), false, false, owner, r, |_| true, false, None);
        let refs = self.move_to_legacy(&live, false);
        let ws = self.oid();
        let ws_name = format!("legacy-ws-{c}");
        let pin = live.revs[0].0;
        self.insert("workspace", doc! {
            "_id": bson(ws), "name": &ws_name, "state": "Stopped", "ownerId": bson(owner), "stateUpdatedAt": self.date(5),
            "configTemplate": { "environmentId": bson(live.id), "environmentRevisionSpec": format!("SomeRevision({pin})") },
        });
        self.w.domino.usage.workspaces.push(WorkspaceUsage {
            id: Some(ws),
            name: ws_name.clone(),
            environment: Some(live.id),
            revision_spec: Some(RevisionSpec::Some(pin)),
            compute_environment: None,
            last_change: Some(self.w.now - 5 * DAY),
            session_environments: vec![],
            session_revisions: vec![],
        });
        self.expect_protected("old-revisions", refs[0].clone(), &format!("workspace '{ws_name}'"));
        for x in &refs[1..r - KEEP_REVISIONS] {
            self.expect("old-revisions", x.clone());
        }
    }

    /// Moves an environment's images to `domino-<envId>:<i>`; with `recorded`, its revision
    /// records name that layout too. Returns the revisions' tag references, oldest first.
    fn move_to_legacy(&mut self, e: &Env, recorded: bool) -> Vec<String> {
        let repo = format!("domino-{}", e.id);
        let mut refs = vec![];
        for (i, (rid, tag)) in e.revs.iter().enumerate() {
            let n = (i + 1).to_string();
            for t in self.w.tags.iter_mut().filter(|t| &t.tag == tag) {
                t.repository = repo.clone();
                t.tag = n.clone();
            }
            refs.push(format!("{repo}:{n}"));
            if !recorded {
                continue;
            }
            let full = format!("{REGISTRY_HOST}/{repo}");
            for d in self.w.mongo.get_mut("environment_revisions").into_iter().flatten() {
                if d.get_object_id("_id").ok() == Some(bson(*rid))
                    && let Ok(m) = d.get_document_mut("metadata")
                {
                    m.insert("dockerImageName", doc! { "repository": &full, "tag": &n });
                }
            }
            for x in self.w.domino.revisions.iter_mut().filter(|x| x.id == *rid) {
                x.tag = Some(n.clone());
                x.repository = Some(full.clone());
            }
        }
        refs
    }

    fn set_clone(&mut self, rev: ObjectId, source: ObjectId) {
        for d in self.w.mongo.get_mut("environment_revisions").into_iter().flatten() {
            if d.get_object_id("_id").ok() == Some(bson(rev)) {
                d.insert("clonedEnvironmentRevisionId", bson(source));
            }
        }
        for r in &mut self.w.domino.revisions {
            if r.id == rev {
                r.cloned_from = Some(source);
            }
        }
    }

    fn models(&mut self, c: usize, base_env: &Env, owner: ObjectId) {
        let v = self.w.size.versions;
        let (rev, rev_tag) = base_env.revs.last().cloned().unwrap();
        let rev_spec = self.w.spec(&self.w.env_repo(), &rev_tag).map(|t| t.target.clone());
        let rev_layers = match rev_spec {
            Some(TagTarget::Image(img)) => img.layers,
            _ => vec![self.base, base_env.env_layer],
        };
        let ok_build = self.oid();
        self.insert("builds", doc! { "_id": bson(ok_build), "status": "Succeeded" });
        let failed_build = self.oid();
        self.insert("builds", doc! { "_id": bson(failed_build), "status": "Failed" });
        for (m, role) in ["deployed", "archived", "archived-short", "archived-deployed"]
            .into_iter()
            .enumerate()
        {
            let id = self.oid();
            let archived = role.starts_with("archived");
            let name = format!(
                "{}-{c}{}",
                MODEL_NAMES[(c + m) % MODEL_NAMES.len()],
                if archived { "-old" } else { "" }
            );
            self.insert(
                "models",
                doc! {
                    "_id": bson(id), "name": &name, "isArchived": archived, "environmentId": bson(base_env.id),
                    "metadata": { "createdBy": bson(owner), "lastModified": self.date(20) },
                    "collaboratorSettings": [{ "collaboratorId": bson(owner), "role": "Owner" }],
                },
            );
            self.w.domino.models.push(Model {
                id,
                name,
                archived,
                environment: Some(base_env.id),
                owner: Some(owner),
            });
            let extra = usize::from(role == "deployed" && c == 0);
            for n in 1..=v + extra {
                let vid = self.oid();
                let r = self.rand();
                let full = format!("{id}-v{n}-2025{:08}_{}", r % 100_000_000, suffix(r));
                let stored = if role == "archived-short" {
                    format!("{id}-v{n}")
                } else {
                    full.clone()
                };
                let mut builds = vec![
                    doc! { "slug": { "image": { "repository": self.w.model_repo(), "tag": &stored } }, "buildId": [{ "value": bson(ok_build) }] },
                ];
                if role == "deployed" && n == v {
                    builds.push(doc! { "slug": { "image": { "repository": self.w.model_repo(), "tag": format!("{id}-v{n}-2025_failed") } }, "buildId": [{ "value": bson(failed_build) }] });
                }
                self.insert(
                    "model_versions",
                    doc! {
                        "_id": bson(vid), "modelId": { "value": bson(id) }, "environmentRevisionId": bson(rev),
                        "metadata": { "builds": builds, "createdBy": bson(owner) },
                    },
                );
                self.w.domino.versions.push(ModelVersion {
                    id: vid,
                    model: id,
                    revision: Some(rev),
                    slugs: vec![stored.clone()],
                    repository: Some(self.w.model_repo()),
                });
                let orphan = n > v;
                if orphan {
                    self.w
                        .expected
                        .orphans
                        .insert(("model_versions".into(), vid.to_string()));
                    continue;
                }
                let mut layers = rev_layers.clone();
                layers.push(LayerSpec {
                    seed: self.rand(),
                    size: 3_000 + (r % 5) * 1_000,
                });
                let img = self.image(layers, 60 - 10 * n as i64, full.clone());
                self.w.tags.push(TagSpec {
                    repository: self.w.model_repo(),
                    tag: full.clone(),
                    target: TagTarget::Image(img),
                });
                let running = n == v && (role == "deployed" || role == "archived-deployed");
                if running {
                    self.saga(vid, "StopModelVersion", 9);
                    self.saga(vid, "StartModelVersion", 3);
                    self.w
                        .domino
                        .usage
                        .active_model_versions
                        .push(ActiveModelVersion { version: vid });
                } else if n == v - 1 {
                    self.saga(vid, "StartModelVersion", 20);
                    self.saga(vid, "StopModelVersion", 10);
                }
                let tag_ref = self.model_ref(&full);
                if archived {
                    if running {
                        self.expect_protected("archived-models", tag_ref, "is running");
                    } else {
                        self.expect("archived-models", tag_ref);
                    }
                }
                if role == "deployed" && n == v {
                    self.w.pods.push(PodSpec {
                        name: format!("model-{c}-{n}"),
                        containers: vec![(
                            "model".into(),
                            format!("{REGISTRY_HOST}/{}:{full}", self.w.model_repo()),
                        )],
                        phase: "Running".into(),
                    });
                }
            }
        }
        self.w.domino.usage.active_model_versions.sort_by_key(|a| a.version);
    }

    fn saga(&mut self, version: ObjectId, name: &str, days_ago: i64) {
        let id = self.oid();
        self.insert(
            "sagas",
            doc! {
                "_id": bson(id), "parameters": { "modelVersionId": bson(version) }, "sagaName": name,
                "state": "succeeded", "isCompleted": true, "started": self.date(days_ago),
            },
        );
    }

    /// Tags no Mongo record names: two of an unknown environment (one used by a pod), one of
    /// an unknown model, and a broken one.
    fn strays(&mut self, c: usize) {
        let env_repo = self.w.env_repo();
        let unknown = self.oid();
        for n in 1..=2 {
            let tag = format!("{unknown}-{n}");
            let l = LayerSpec {
                seed: self.rand(),
                size: 4_000,
            };
            let img = self.image(vec![self.base, l], 200, tag.clone());
            self.w.tags.push(TagSpec {
                repository: env_repo.clone(),
                tag: tag.clone(),
                target: TagTarget::Image(img),
            });
            if n == 1 {
                let pod = format!("run-{c}-adhoc");
                self.w.pods.push(PodSpec {
                    name: pod.clone(),
                    containers: vec![("main".into(), format!("{REGISTRY_HOST}/{env_repo}:{tag}"))],
                    phase: "Running".into(),
                });
                self.expect_protected(
                    "unreferenced-tags",
                    self.env_ref(&tag),
                    &format!("/{pod} container main"),
                );
            } else {
                self.expect("unreferenced-tags", self.env_ref(&tag));
            }
        }
        let unknown_model = self.oid();
        let tag = format!("{unknown_model}-v1-20240101000000_stray{c}");
        let l = LayerSpec {
            seed: self.rand(),
            size: 3_500,
        };
        let img = self.image(vec![self.base, l], 150, tag.clone());
        self.w.tags.push(TagSpec {
            repository: self.w.model_repo(),
            tag: tag.clone(),
            target: TagTarget::Image(img),
        });
        self.expect("unreferenced-tags", self.model_ref(&tag));
        let broken = format!("{}-1", self.oid());
        let l = LayerSpec {
            seed: self.rand(),
            size: 2_500,
        };
        let img = self.image(vec![self.base, l], 120, broken.clone());
        self.w.tags.push(TagSpec {
            repository: env_repo.clone(),
            tag: broken.clone(),
            target: TagTarget::Image(img),
        });
        self.w.broken.push((env_repo, broken.clone()));
        self.expect("broken-tags", self.env_ref(&broken));
        self.expect("unreferenced-tags", self.env_ref(&broken));
    }

    /// World-wide extras: a buildcache tag and a Keycloak account with no Domino id.
    fn once(&mut self) {
        let l = LayerSpec {
            seed: self.rand(),
            size: 6_000,
        };
        let img = self.image(vec![self.base, l], 1, "buildcache".into());
        self.w.tags.push(TagSpec {
            repository: self.w.env_repo(),
            tag: "buildcache".into(),
            target: TagTarget::Image(img),
        });
        self.w.keycloak_users.push(KeycloakUser {
            username: "svc-no-domino".into(),
            domino_id: None,
            enabled: false,
        });
        for cat in [
            "archived-environments",
            "archived-models",
            "unused-environments",
            "deactivated-owner-environments",
            "old-revisions",
            "unreferenced-tags",
            "orphaned-references",
            "broken-tags",
        ] {
            self.w.expected.candidates.entry(cat.into()).or_default();
        }
    }
}

fn suffix(r: u64) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..8).map(|i| A[((r >> (i * 6)) % 62) as usize] as char).collect()
}

impl World {
    /// The pods as the Kubernetes adapter reports them, in `namespace`.
    pub fn workloads(&self, namespace: &str) -> crate::model::workloads::Workloads {
        use crate::model::workloads::{Evidence, ImageRef, WorkloadImage, Workloads};
        Workloads {
            images: self
                .pods
                .iter()
                .filter(|p| p.phase == "Running" || p.phase == "Pending")
                .flat_map(|p| {
                    p.containers.iter().filter_map(move |(c, image)| {
                        Some(WorkloadImage {
                            image: ImageRef::parse(image)?,
                            evidence: Evidence {
                                namespace: namespace.to_string(),
                                kind: "Pod".into(),
                                name: p.name.clone(),
                                container: c.clone(),
                                context: None,
                            },
                        })
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;
