//! SSH keys and gateway sign-in through the real window: a key generated in
//! the app and one imported with its passphrase each log on to the private
//! host; an app key that no host trusts logs on with a certificate the
//! gateway's CA signs at connect time; a granted host whose credential lives in
//! the gateway's vault opens with no question and nothing shown. Private keys
//! and the vault's password are nowhere the app writes in plain text.

use portcullis_lab::rdp::wait_for_clipboard;
use portcullis_lab::webdriver::{ENTER, WebDriver};
use portcullis_lab::*;

use crate::desktop::{terminal_shows, visible};

const E2E_MASTER: &str = "e2e-keys-master-password";

/// Adds a host through the gateway the window signed in to, signing in with
/// `auth` (the dialog's choice) and, for app keys, the key named `key`.
fn add_gateway_host(driver: &WebDriver, name: &str, auth: &str, key: &str) {
    driver.click("#add-host");
    driver.type_into("#dialog input[name=name]", name);
    driver.type_into("#dialog input[name=address]", "vnet1");
    driver.type_into("#dialog input[name=user]", SSH_USER);
    driver
        .script(&format!(
            "const via = document.querySelector('#dialog select[name=via]'); \
             via.value = [...via.options].find(o => o.value.startsWith('gateway:')).value; \
             via.dispatchEvent(new Event('change')); \
             const auth = document.querySelector('#dialog select[name=auth]'); \
             auth.value = {auth:?}; auth.dispatchEvent(new Event('change')); \
             const key = document.querySelector('#dialog select[name=app_key]'); \
             const option = [...key.options].find(o => o.textContent.startsWith({key:?} + ' ')); \
             if (option) key.value = option.value;"
        ))
        .expect("choose route, sign-in method and key");
    driver.click("#host-save");
    driver.wait_until(
        "the dialog to close",
        "return !document.querySelector('#dialog[open]');",
    );
}

/// Opens the host from the search box; the tab must connect with no question
/// asked (the host key is trusted by then), and the shell proves who it is.
fn connects_without_questions(driver: &WebDriver, name: &str, proof: &str) {
    driver.clear("#search");
    driver.type_into("#search", name);
    driver.wait(&format!(".host[data-host='{name}']"));
    driver.type_into("#search", ENTER);
    driver.wait(&format!(".tab.connected[data-title='{name}']"));
    assert!(!visible(driver, "#dialog[open]"), "a question was asked");
    driver.type_into(
        ".panel.active .screen",
        &format!("echo {proof}-$(id -un){ENTER}"),
    );
    terminal_shows(driver, &format!("{proof}-{SSH_USER}"));
}

#[test]
fn desktop_window_signs_in_with_app_keys_gateway_certificates_and_vault_credentials() {
    let Some(lab) = Lab::lab_or_skip(
        "desktop_window_signs_in_with_app_keys_gateway_certificates_and_vault_credentials",
    ) else {
        return;
    };
    // The gateway: its SSH CA trusted by the host's sshd, alice's certificates
    // carry the lab login, and vnet1's password sits in the vault.
    let ca = String::from_utf8(lab.gw(&["ssh-ca", "init"], None).stdout).unwrap();
    std::fs::write(lab.path("ssh/user_ca.pub"), ca).unwrap();
    lab.gw(
        &[
            "grant",
            "add",
            "alice",
            "--host",
            "vnet1",
            "--principal",
            SSH_USER,
        ],
        None,
    );
    lab.set_secret("vnet1", "password", SSH_USER, SSH_USER_PASSWORD);

    let desktop = Desktop::start(&lab, "e2e-keys");
    let window = desktop.window();
    let gateway_url = lab.gateway_url.clone();
    let fingerprint = lab.fingerprint.clone();
    let display = desktop.display.clone();
    let imported = lab.path("ssh/client_pass_ed25519");
    let imported_fingerprint = ssh_fingerprint(&lab.path("ssh/client_pass_ed25519.pub"));
    let authorized_keys = lab.path("ssh/authorized_keys");

    in_netns(&lab.out.clone(), move || {
        let driver = window.open();
        let shot = |name: &str| driver.shot(name);
        driver.wait("#search");
        // Keys live in the password store: set it up first.
        driver.click("#secrets-action");
        driver.type_into("#dialog input[name=master]", E2E_MASTER);
        driver.type_into("#dialog input[name=master_again]", E2E_MASTER);
        driver.click("#secrets-submit");
        driver.wait("#secrets-status[data-state=ready]");
        driver.click("#sign-in");
        driver.type_into("#dialog input[name=url]", &gateway_url);
        driver.type_into("#dialog input[name=user]", "alice");
        driver.type_into("#dialog input[name=password]", PASSWORD);
        driver.click("#sign-in-submit");
        driver.wait("#dialog code.fingerprint");
        assert_eq!(
            driver
                .text("#dialog code.fingerprint")
                .replace(':', "")
                .to_lowercase(),
            fingerprint.replace(':', "").to_lowercase()
        );
        driver.click("#sign-in-submit");
        driver.wait(".host.gateway[data-host='vnet1']");

        // Generate a key; its fingerprint and public line are shown, and Copy
        // puts the line on the clipboard for the host's authorized_keys.
        driver.click("#keys-button");
        driver.wait_until(
            "the empty key list",
            "return document.querySelector('#dialog').innerText.includes('keeps no key yet') \
             && document.querySelector('#dialog').innerText.includes('SSH_AUTH_SOCK is not set');",
        );
        driver.type_into("#key-name", "e2e-generated");
        driver.click("#key-generate");
        driver.wait("#dialog .key-row[data-key='e2e-generated']");
        let public = driver.text("#dialog .key-row[data-key='e2e-generated'] .public-key");
        assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
        let shown = driver.text("#dialog .key-row[data-key='e2e-generated'] .key-fingerprint");
        assert!(shown.starts_with("SHA256:"), "{shown}");
        driver.click("#dialog .key-row[data-key='e2e-generated'] .copy-public");
        wait_for_clipboard(&display, None, &public);

        // Import the lab's passphrase key: a wrong passphrase is said beside
        // the field; the right one imports it (and is not kept).
        driver.type_into("#import-name", "e2e-imported");
        driver.type_into("#import-path", imported.to_str().unwrap());
        driver.type_into("#import-passphrase", "not-the-passphrase");
        driver.click("#key-import");
        driver.wait_until(
            "the passphrase error",
            "const e = document.querySelector('[data-error-for=passphrase]'); \
             return !!e && e.textContent === 'wrong passphrase';",
        );
        shot("30-keys-wrong-passphrase");
        driver.clear("#import-passphrase");
        driver.type_into("#import-passphrase", KEY_PASSPHRASE);
        driver.click("#key-import");
        driver.wait("#dialog .key-row[data-key='e2e-imported']");
        assert_eq!(
            driver.text("#dialog .key-row[data-key='e2e-imported'] .key-fingerprint"),
            imported_fingerprint
        );
        // A key no host trusts: it logs on only with the gateway's certificate.
        driver.type_into("#key-name", "e2e-cert");
        driver.click("#key-generate");
        driver.wait("#dialog .key-row[data-key='e2e-cert']");
        shot("31-keys");
        driver.click("#keys-close");
        // The operator adds the copied public key to the host.
        let mut authorized = std::fs::read_to_string(&authorized_keys).unwrap();
        authorized.push_str(&public);
        authorized.push('\n');
        std::fs::write(&authorized_keys, authorized).unwrap();

        // The generated key: the host key is asked once, then the shell.
        add_gateway_host(&driver, "key-generated", "app_key", "e2e-generated");
        driver.clear("#search");
        driver.type_into("#search", "key-generated");
        driver.wait(".host[data-host='key-generated']");
        driver.type_into("#search", ENTER);
        driver.wait("#dialog[open] button[data-choice=accept_and_remember]");
        driver.click("#dialog button[data-choice=accept_and_remember]");
        driver.wait(".tab.connected[data-title='key-generated']");
        driver.type_into(
            ".panel.active .screen",
            &format!("echo generated-$(id -un){ENTER}"),
        );
        terminal_shows(&driver, &format!("generated-{SSH_USER}"));
        shot("32-generated-key-session");
        // The imported key: no passphrase asked, it was opened at import.
        add_gateway_host(&driver, "key-imported", "app_key", "e2e-imported");
        connects_without_questions(&driver, "key-imported", "imported");
        // The untrusted key with a certificate from the gateway.
        add_gateway_host(&driver, "key-cert", "gateway_certificate", "e2e-cert");
        connects_without_questions(&driver, "key-cert", "certified");
        shot("33-certificate-session");
        // The window at its narrowest: the tab bar no longer shows every tab.
        driver.set_window_size(720, 640);
        // The granted host whose credential is in the vault: no user name, no
        // password asked; the badge says the gateway signs in.
        // Escape empties the search and shows every host again.
        driver.type_into("#search", "\u{E00C}");
        driver.wait(".host.gateway[data-host='vnet1'] .badge.gateway-credential");
        driver
            .script(
                "document.querySelector(\".host.gateway[data-host='vnet1']\")\
                 .dispatchEvent(new MouseEvent('dblclick', { bubbles: true }));",
            )
            .expect("open the granted host");
        driver.wait(".tab.connected[data-title='vnet1']");
        assert!(
            !visible(&driver, "#dialog[open]"),
            "a question was asked for the vault's host"
        );
        // The new session's tab, the last of four, is scrolled into sight.
        driver.wait_until(
            "the bar to overflow and its active tab to be in sight",
            "const bar = document.getElementById('tabs'); \
             const tab = bar.querySelector('.tab.active'); \
             const b = bar.getBoundingClientRect(), t = tab.getBoundingClientRect(); \
             return bar.scrollWidth > bar.clientWidth && tab.dataset.title === 'vnet1' \
               && t.left >= b.left - 1 && t.right <= b.right + 1;",
        );
        driver.type_into(
            ".panel.active .screen",
            &format!("echo vault-$(id -un){ENTER}"),
        );
        terminal_shows(&driver, &format!("vault-{SSH_USER}"));
        shot("34-vault-session");
        driver.quit();
    });

    // The gateway signed the certificate for alice and released the password to her.
    let audit = lab.audit();
    assert!(
        audit
            .iter()
            .any(|e| e["event"] == "ssh_cert_issued" && e["user"] == "alice"),
        "no certificate issued to alice"
    );
    assert!(
        audit.iter().any(|e| e["event"] == "secret_released"
            && e["user"] == "alice"
            && e["host"] == "vnet1"),
        "no release to alice"
    );
    // No private key in the inventory; the vault's password nowhere the app writes.
    let mut written = Vec::new();
    for file in [
        "inventory.db",
        "inventory.db-wal",
        "secrets.vault",
        "known_hosts",
    ] {
        written.extend(std::fs::read(desktop.home.join(file)).unwrap_or_default());
    }
    written.extend(std::fs::read(lab.path("e2e-keys-tauri-driver.log")).unwrap_or_default());
    let text = String::from_utf8_lossy(&written);
    assert!(!text.contains("PRIVATE KEY"), "a private key in plain text");
    assert!(
        !text.contains(SSH_USER_PASSWORD),
        "the vault's password in plain text"
    );
    assert!(
        !text.contains(KEY_PASSPHRASE),
        "the passphrase in plain text"
    );
}
