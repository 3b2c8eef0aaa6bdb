//! MongoDB credentials from the `mongodb-replicaset-admin` Kubernetes secret (domain.md §1),
//! read from a real kube-apiserver.

mod support;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PostParams};
use registry_cleaner::ops::load::mongo_secret;
use registry_cleaner::sources::kube::KubeSettings;

#[test]
fn the_password_comes_from_the_admin_secret_and_a_missing_secret_is_none() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let settings = KubeSettings {
        kubeconfig: Some(k.kubeconfig.display().to_string()),
        ..KubeSettings::default()
    };
    rt.block_on(async {
        let client = registry_cleaner::sources::kube::client(&settings)
            .await
            .expect("client");
        let ns: Api<Namespace> = Api::all(client.clone());
        let mut n = Namespace::default();
        n.metadata.name = Some("platform-secret-test".into());
        ns.create(&PostParams::default(), &n).await.expect("namespace");
        assert_eq!(mongo_secret(&settings, "platform-secret-test").await.unwrap(), None);
        let secrets: Api<Secret> = Api::namespaced(client, "platform-secret-test");
        let mut s = Secret::default();
        s.metadata.name = Some("mongodb-replicaset-admin".into());
        s.data = Some(
            [
                ("user".to_string(), ByteString(b"admin".to_vec())),
                ("password".to_string(), ByteString(b"s3cret\n".to_vec())),
            ]
            .into(),
        );
        secrets.create(&PostParams::default(), &s).await.expect("secret");
        assert_eq!(
            mongo_secret(&settings, "platform-secret-test").await.unwrap(),
            Some(("admin".to_string(), "s3cret".to_string()))
        );
    });
}
