//! Certificates made at test time (rcgen) for the TLS tests: one authority and the leaf
//! certificates it signed, as PEM files in a scratch directory.

use super::scratch_dir;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// One authority and the certificates it signed, as PEM files in `dir`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

pub fn authority(cn: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("ca key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    (params.self_signed(&key).expect("ca cert"), key)
}

pub fn leaf(
    dir: &Path,
    name: &str,
    cn: &str,
    purpose: ExtendedKeyUsagePurpose,
    ca: &(rcgen::Certificate, KeyPair),
) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![purpose];
    let cert = params.signed_by(&key, &ca.0, &ca.1).expect("sign");
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write cert");
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
}

/// ca.crt; server.crt/key and server2.crt/key (another certificate of the same CA);
/// client.crt/key (signed by the CA); rogue.crt/key (a client of another CA).
pub fn make_pki(tag: &str) -> Pki {
    let dir = scratch_dir(tag);
    let ca = authority("percore test CA");
    std::fs::write(dir.join("ca.crt"), ca.0.pem()).expect("write ca");
    leaf(
        &dir,
        "server",
        "first",
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    leaf(
        &dir,
        "server2",
        "second",
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    leaf(
        &dir,
        "client",
        "client",
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca,
    );
    let other = authority("someone else's CA");
    leaf(
        &dir,
        "rogue",
        "rogue",
        ExtendedKeyUsagePurpose::ClientAuth,
        &other,
    );
    Pki { dir }
}
