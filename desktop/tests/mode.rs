//! The top bar says which mode the device is in (docs/deployment.md): single-device, or a clinic
//! device with the clinic database's health; when the database does not answer, an offline
//! banner says since when, how old the device's copy of the lists is, and what still works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use medcard_desktop::{AppContext, CardSource, View, demo};
use reader::deployment::{Deployment, FORMAT, PgConfig, Role, Tls};
use support::{harness, wait_for};

#[test]
fn a_single_device_says_so() {
    let (mut h, _d) = support::app(View::Bedside);
    wait_for(&mut h, "Single device");
    assert!(support::on_screen(&h).iter().all(|l| !l.contains("OFFLINE")));
}

#[test]
fn a_clinic_device_whose_database_does_not_answer_shows_the_offline_banner() {
    let d = demo::create(None, medcard_desktop::context::system_now()).unwrap();
    // A port nothing listens on: the clinic database is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dep = Deployment {
        format: FORMAT,
        device_id: "bed-7".into(),
        role: Role::Bedside,
        postgres: PgConfig { url: format!("postgresql://bed7@127.0.0.1:{port}/medcard"), tls: Tls::Disable, ca_file: None },
        store: None,
    };
    dep.save(&d.data_dir).unwrap();
    Deployment::save_password(&d.data_dir, "not-used").unwrap();
    // The copy of the lists this device refreshed last (one revoked card, one trusted clinic),
    // two days before: the banner says how old it is.
    let refreshed = medcard_desktop::context::system_now() - 2 * 86_400;
    let rev = reader::clinic::Revocation { serial: 42, revoked_at: refreshed - 60, reason: "lost".into() };
    let mut db = reader::clinic::ClinicState::at(&d.data_dir).db().unwrap();
    db.replace_copies(&[rev], &[("clinic-b.pem".into(), b"not parsed here".to_vec())], refreshed).unwrap();
    drop(db);
    let day = qr::time::format_rfc3339(refreshed);
    let expected = format!("lists are from {} (1 revoked, 1 trusted)", day.get(..16).unwrap().replace('T', " "));
    let env = AppContext::new(&d.data_dir, CardSource::Sim(d.slot.clone()));
    let mut h = harness(env, View::Bedside);
    wait_for(&mut h, "Clinic device bed-7 (bedside) · clinic database: OFFLINE");
    wait_for(&mut h, "OFFLINE since");
    wait_for(&mut h, "cached records can still be opened; new scans are refused");
    wait_for(&mut h, &expected);
}
