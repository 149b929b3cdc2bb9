//! The real desktop window (Tauri, WebKitGTK) under Xvfb, driven over WebDriver
//! through tauri-driver, in the lab: the app runs in the outside namespace and
//! reaches the private host only through the gateway. Screenshots land in
//! target/e2e/.

use std::os::unix::fs::PermissionsExt;

use portcullis_client::inventory::Inventory;
use portcullis_client::secrets::{SecretStore, StoreChoice};
use portcullis_lab::keyring::Keyring;
use portcullis_lab::webdriver::{ENTER, WebDriver};
use portcullis_lab::*;

const E2E_MASTER: &str = "e2e-master-password";

/// Waits until a line of the active terminal reads `line`.
pub(crate) fn terminal_shows(driver: &WebDriver, line: &str) {
    let script = format!(
        "const rows = document.querySelector('.panel.active .term-rows'); \
         return !!rows && rows.innerText.split('\\n').some(l => l.trim() === {line:?});"
    );
    driver.wait_until(&format!("{line:?} in the terminal"), &script);
}

/// Answers the open password question with the lab password (its Remember box
/// ticked by the caller), logs out, reconnects: the saved password must answer,
/// with no question asked, and the shell echoes `proof`.
fn remembered_password_answers_the_reconnect(driver: &WebDriver, tab: &str, proof: &str) {
    driver.type_into(
        "#dialog input[name=answer]",
        &format!("{SSH_USER_PASSWORD}{ENTER}"),
    );
    driver.wait(&format!(".tab.connected[data-title='{tab}']"));
    driver.type_into(".panel.active .screen", &format!("exit{ENTER}"));
    driver.wait(&format!(".tab.closed[data-title='{tab}']"));
    driver.click(".panel.active .reconnect");
    driver.wait(&format!(".tab.connected[data-title='{tab}']"));
    assert!(
        !visible(driver, "#dialog[open]"),
        "a question was asked despite the saved password"
    );
    driver.type_into(".panel.active .screen", &format!("echo {proof}{ENTER}"));
    terminal_shows(driver, proof);
}

/// Whether an element matching `css` is in the page now.
pub(crate) fn visible(driver: &WebDriver, css: &str) -> bool {
    driver
        .script(&format!("return !!document.querySelector({css:?});"))
        .map(|v| v.as_bool() == Some(true))
        .unwrap_or(false)
}

#[test]
fn desktop_window_signs_in_opens_a_granted_host_and_manages_local_hosts() {
    let Some(lab) =
        Lab::lab_or_skip("desktop_window_signs_in_opens_a_granted_host_and_manages_local_hosts")
    else {
        return;
    };
    let desktop = Desktop::start(&lab, "e2e");
    // The user's own key, where OpenSSH keeps it; no known_hosts: the host key is asked.
    let key = desktop.user_home.join(".ssh/id_ed25519");
    std::fs::copy(lab.path("ssh/client_ed25519"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let window = desktop.window();
    let gateway_url = lab.gateway_url.clone();
    let fingerprint = lab.fingerprint.clone();
    let home = desktop.home.clone();

    let shown_fingerprint = in_netns(&lab.out.clone(), move || {
        let driver = window.open();
        let shot = |name: &str| driver.shot(name);
        driver.wait("#search");
        driver.wait_until(
            "the empty state",
            "return document.body.innerText.includes('Nothing here yet');",
        );
        shot("01-empty-inventory");
        // Saved secrets: no keychain on this bus-less display, so the encrypted
        // file store, set up from the sidebar (a mismatched repeat is caught). Set
        // up first, it also keeps the gateway's refresh token.
        driver.wait("#secrets-status[data-kind=file][data-state=not_set_up]");
        driver.click("#secrets-action");
        driver.type_into("#dialog input[name=master]", E2E_MASTER);
        driver.type_into("#dialog input[name=master_again]", "something-else");
        driver.click("#secrets-submit");
        driver.wait_until(
            "the mismatch error",
            "const e = document.querySelector('[data-error-for=master_again]'); return !!e && e.textContent.length > 0;",
        );
        driver.clear("#dialog input[name=master_again]");
        driver.type_into("#dialog input[name=master_again]", E2E_MASTER);
        driver.click("#secrets-submit");
        driver.wait("#secrets-status[data-state=ready]");

        // Sign in: the certificate is shown for confirmation; a wrong password is a clear error.
        driver.click("#sign-in");
        driver.type_into("#dialog input[name=url]", &gateway_url);
        driver.type_into("#dialog input[name=user]", "alice");
        driver.type_into("#dialog input[name=password]", "not-the-password");
        driver.click("#sign-in-submit");
        let shown = driver.text("#dialog code.fingerprint");
        shot("02-confirm-certificate");
        driver.click("#sign-in-submit");
        driver.wait_until(
            "the wrong-password error",
            "const e = document.querySelector('#dialog .form-error'); \
             return !!e && e.textContent.includes('rejected the user name or password');",
        );
        shot("03-wrong-password");
        driver.clear("#dialog input[name=password]");
        driver.type_into("#dialog input[name=password]", PASSWORD);
        driver.click("#sign-in-submit");
        driver.wait(".host.gateway[data-host='vnet1']");
        shot("04-granted-hosts");

        // Open the granted host: find it, Enter, log in as root, trust the key.
        driver.type_into("#search", "vnet1");
        driver.type_into("#search", ENTER);
        driver.clear("#dialog input[name=answer]");
        driver.type_into("#dialog input[name=answer]", &format!("root{ENTER}"));
        driver.wait_until(
            "the host key question",
            "return !!document.querySelector('#dialog[open] button[data-choice=accept_and_remember]');",
        );
        let question = driver.text("#dialog");
        assert!(question.contains("SHA256:"), "{question}");
        shot("05-host-key");
        driver.click("#dialog button[data-choice=accept_and_remember]");
        driver.wait(".tab.connected");
        driver.type_into(
            ".panel.active .screen",
            &format!("echo portcullis-e2e{ENTER}"),
        );
        terminal_shows(&driver, "portcullis-e2e");
        shot("06-terminal");
        // Find in the scrollback: the line scrolls out of view, the search brings
        // it back, marked; Escape returns to the live screen.
        driver.type_into(".panel.active .screen", &format!("seq 1 200{ENTER}"));
        terminal_shows(&driver, "200");
        driver.click(".panel.active .find-open");
        driver.type_into(
            ".panel.active .find-bar input",
            &format!("portcullis-e2e{ENTER}"),
        );
        driver.wait_until(
            "the hit in view",
            "const hit = document.querySelector('.panel.active .term-hit'); \
             const rows = document.querySelector('.panel.active .term-rows'); \
             return !!hit && !hit.hidden && rows.innerText.split('\\n').some(l => l.trim() === 'portcullis-e2e');",
        );
        // "N of M", the newest (bottom) hit first; the command line echoed by
        // the shell holds the text too (once or twice, with typeahead).
        let count = driver.text(".panel.active .find-count");
        let numbers: Vec<u32> = count
            .split(" of ")
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        assert!(
            matches!(numbers.as_slice(), [n, m] if n == m && *m >= 2),
            "{count}"
        );
        shot("06b-find");
        driver.type_into(".panel.active .find-bar input", "\u{E00C}");
        terminal_shows(&driver, "200");

        // A local host: add (with inline errors first), find, edit, delete.
        driver.click("#add-host");
        driver.type_into("#dialog input[name=name]", "e2e-web");
        driver.type_into("#dialog input[name=address]", "10.9.9.9");
        driver.clear("#dialog input[name=port]");
        driver.type_into("#dialog input[name=port]", "0");
        driver.click("#host-save");
        driver.wait_until(
            "the port error",
            "const e = document.querySelector('[data-error-for=port]'); return !!e && e.textContent.length > 0;",
        );
        driver.clear("#dialog input[name=port]");
        driver.type_into("#dialog input[name=port]", "2222");
        driver.clear("#dialog input[name=name]");
        driver.click("#host-save");
        driver.wait_until(
            "the name error from the inventory",
            "const e = document.querySelector('[data-error-for=name]'); return !!e && e.textContent.includes('empty');",
        );
        shot("07-host-form-errors");
        driver.type_into("#dialog input[name=name]", "e2e-web");
        driver.type_into("#dialog input[name=tags]", "prod, e2e");
        driver.click("#host-save");
        driver.wait_until(
            "the dialog to close",
            "return !document.querySelector('#dialog[open]');",
        );
        // Find it: the search box still says "vnet1"; a new query highlights the match.
        driver.clear("#search");
        driver.type_into("#search", "e2e");
        driver.wait(".host.local[data-host='e2e-web'] mark");
        shot("08-search");
        driver.click("[data-edit='e2e-web']");
        driver.clear("#dialog input[name=tags]");
        driver.type_into("#dialog input[name=tags]", "staging");
        driver.click("#host-save");
        driver.wait_until(
            "the edited tag",
            "const h = document.querySelector(\".host.local[data-host='e2e-web']\"); \
             return !!h && h.innerText.includes('staging') && !document.querySelector('#dialog[open]');",
        );
        // The tag filter: vnet1's tag hides the local host, a second click brings it back.
        driver.click(".tag-filter .tag[data-tag='lab']");
        driver.wait_until(
            "the tag filter to hide e2e-web",
            "return !document.querySelector(\".host.local[data-host='e2e-web']\");",
        );
        driver.click(".tag-filter .tag[data-tag='lab']");
        driver.wait(".host.local[data-host='e2e-web']");
        driver.click("[data-edit='e2e-web']");
        driver.click("#host-delete");
        driver.click("#dialog button[data-choice=delete]");
        driver.wait_until(
            "the host to go",
            "return !document.querySelector(\".host.local[data-host='e2e-web']\");",
        );
        assert!(!visible(&driver, ".host.local"));
        shot("09-after-delete");

        // A host that signs in by password, through the gateway the window signed in to.
        driver.click("#add-host");
        driver.type_into("#dialog input[name=name]", "lab-pw");
        driver.type_into("#dialog input[name=address]", "vnet1");
        driver.type_into("#dialog input[name=user]", SSH_USER);
        driver
            .script(
                "const via = document.querySelector('#dialog select[name=via]'); \
                 via.value = [...via.options].find(o => o.value.startsWith('gateway:')).value; \
                 via.dispatchEvent(new Event('change')); \
                 const auth = document.querySelector('#dialog select[name=auth]'); \
                 auth.value = 'password'; auth.dispatchEvent(new Event('change'));",
            )
            .expect("choose route and sign-in method");
        driver.click("#host-save");
        driver.wait_until(
            "the dialog to close",
            "return !document.querySelector('#dialog[open]');",
        );
        driver.clear("#search");
        driver.type_into("#search", "lab-pw");
        driver.wait(".host.local[data-host='lab-pw']");
        driver.type_into("#search", ENTER);
        // A wrong password first: asked again, as OpenSSH does; then the right
        // one, remembered.
        driver.wait("#dialog[open] input[name=remember]");
        driver.type_into(
            "#dialog input[name=answer]",
            &format!("not-the-ssh-password{ENTER}"),
        );
        driver.wait("#dialog[open] input[name=remember]");
        driver.click("#dialog input[name=remember]");
        shot("10-remember-password");
        remembered_password_answers_the_reconnect(&driver, "lab-pw", "saved-password-ok");
        driver.click("[data-edit='lab-pw']");
        driver.wait("#dialog .saved-password");
        shot("11-saved-password");
        driver.click("#host-cancel");

        // The refresh token went to the encrypted store, not the state file.
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(home.join("gateways.json")).expect("gateways.json"),
        )
        .expect("gateways.json is JSON");
        assert_eq!(state["gateways"][0]["refresh_in_store"], true, "{state}");
        assert_eq!(state["gateways"][0]["refresh_token"], "", "{state}");

        // Folders: add one, see it, delete it.
        driver.clear("#search");
        driver.click("#add-folder");
        driver.type_into("#dialog input[name=answer]", &format!("Racks{ENTER}"));
        driver.wait("details.folder[data-folder='Racks']");
        driver.click("[data-folder-delete='Racks']");
        driver.click("#dialog button[data-choice=delete]");
        driver.wait_until(
            "the folder to go",
            "return !document.querySelector(\"details.folder[data-folder='Racks']\");",
        );

        // The gateway's own dialog: its pinned certificate; sign out.
        driver.click(".gateway-manage");
        driver.wait("#dialog code.fingerprint");
        shot("12-gateway");
        driver.click("#gateway-sign-out");
        driver.wait_until(
            "the signed-out gateway",
            "return document.querySelector('#host-list').innerText.includes('Signed out.');",
        );
        driver.click("#secrets-action");
        driver.wait("#secrets-status[data-state=locked]");
        driver.quit();
        shown
    });
    // Signing out forgot the tokens, the file's and the store's.
    let state = std::fs::read_to_string(desktop.home.join("gateways.json")).unwrap();
    assert!(!state.contains("https://"), "{state}");
    let vault = std::fs::read_to_string(desktop.home.join("secrets.vault")).unwrap();
    assert!(!vault.contains("gateway-refresh/"), "{vault}");
    // The password is in the encrypted file and nowhere else the app writes.
    for file in ["secrets.vault", "inventory.db"] {
        let bytes = std::fs::read(desktop.home.join(file)).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SSH_USER_PASSWORD),
            "the password is readable in {file}"
        );
    }
    assert!(std::fs::metadata(desktop.home.join("secrets.vault")).is_ok());
    let normalise = |s: &str| s.replace(':', "").to_ascii_lowercase();
    assert_eq!(normalise(&shown_fingerprint), normalise(&fingerprint));
    // The key accepted in the window is in the app's store, under the host's name.
    let trusted = std::fs::read_to_string(desktop.home.join("known_hosts")).unwrap();
    assert!(trusted.starts_with("vnet1 ssh-ed25519 "), "{trusted}");
    // The audit shows the tunnel the window opened.
    assert!(
        lab.audit()
            .iter()
            .any(|e| e["event"] == "tunnel_open" && e["user"] == "alice" && e["host"] == "vnet1"),
        "no tunnel_open for alice/vnet1 in the audit"
    );
}

#[test]
fn desktop_window_keeps_passwords_in_the_os_keychain_and_jumps_through_a_bastion() {
    let Some(lab) = Lab::lab_or_skip(
        "desktop_window_keeps_passwords_in_the_os_keychain_and_jumps_through_a_bastion",
    ) else {
        return;
    };
    let keyring_dir = lab.path("e2e-keyring");
    std::fs::create_dir_all(&keyring_dir).unwrap();
    let keyring = Keyring::start(&keyring_dir);
    let desktop = Desktop::start_with_bus(&lab, "e2e-keychain", Some(&keyring.address));
    let key = desktop.user_home.join(".ssh/id_ed25519");
    std::fs::copy(lab.path("ssh/client_ed25519"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let window = desktop.window();

    in_netns(&lab.out.clone(), move || {
        let driver = window.open();
        let shot = |name: &str| driver.shot(name);
        driver.wait("#secrets-status[data-kind=keychain][data-state=ready]");
        let add = |name: &str, address: &str, port: &str, user: &str, script: &str| {
            driver.click("#add-host");
            driver.type_into("#dialog input[name=name]", name);
            driver.type_into("#dialog input[name=address]", address);
            driver.clear("#dialog input[name=port]");
            driver.type_into("#dialog input[name=port]", port);
            driver.type_into("#dialog input[name=user]", user);
            driver.script(script).expect("choose route and method");
            driver.click("#host-save");
            driver.wait_until(
                "the dialog to close",
                "return !document.querySelector('#dialog[open]');",
            );
        };
        // The bastion: OpenSSH in the edge namespace, the user's default key.
        add("bastion", JUMP_IP, &JUMP_PORT.to_string(), "root", "");
        // The private host behind it, by password.
        add(
            "inside",
            VNET_IP,
            "22",
            SSH_USER,
            "const via = document.querySelector('#dialog select[name=via]'); \
             via.value = 'jump'; via.dispatchEvent(new Event('change')); \
             document.querySelector('#dialog input[name=hops]').value = 'bastion'; \
             const auth = document.querySelector('#dialog select[name=auth]'); \
             auth.value = 'password'; auth.dispatchEvent(new Event('change'));",
        );
        driver.type_into("#search", "inside");
        driver.type_into("#search", ENTER);
        // Two unknown host keys, the bastion's then the host's.
        for _ in 0..2 {
            driver.wait("#dialog[open] button[data-choice=accept_and_remember]");
            driver.click("#dialog button[data-choice=accept_and_remember]");
        }
        driver.wait("#dialog[open] input[name=remember]");
        let offer = driver.text("#dialog");
        assert!(offer.contains("Remember in the OS keychain"), "{offer}");
        driver.click("#dialog input[name=remember]");
        shot("13-keychain-remember");
        remembered_password_answers_the_reconnect(&driver, "inside", "through-the-bastion");
        shot("14-keychain-jump");
        driver.quit();
    });
    // The password is in gnome-keyring under the host's reference; no file store.
    assert!(!desktop.home.join("secrets.vault").exists());
    let home = desktop.home.clone();
    let address = keyring.address.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let inventory = Inventory::open(&home.join("inventory.db")).await.unwrap();
        let host = inventory
            .hosts()
            .await
            .unwrap()
            .into_iter()
            .find(|h| h.name == "inside")
            .expect("the host");
        let reference = host.credential_ref.expect("a saved password reference");
        let store = SecretStore::open_with(&home, StoreChoice::Keychain, Some(&address))
            .await
            .unwrap();
        let saved = store
            .get(&reference)
            .await
            .unwrap()
            .expect("in the keychain");
        assert_eq!(saved.expose(), SSH_USER_PASSWORD);
    });
}
