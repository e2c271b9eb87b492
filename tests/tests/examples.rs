//! The ready-to-paste files under `examples/` stay valid.

use testloop_tests::repo_root;

#[test]
fn mcp_client_configurations_are_valid_json_that_start_the_server() {
    let dir = repo_root().join("examples/mcp");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let config: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let servers = config
            .get("mcpServers")
            .or_else(|| config.get("servers"))
            .and_then(serde_json::Value::as_object)
            .unwrap_or_else(|| panic!("{}: no servers", path.display()));
        let stdio = &servers["testloop"];
        assert_eq!(stdio["command"], "testloop", "{}", path.display());
        assert_eq!(stdio["args"][0], "serve", "{}", path.display());
        if let Some(http) = servers.get("testloop-http") {
            assert_eq!(
                http["url"],
                "http://127.0.0.1:8080/mcp",
                "{}",
                path.display()
            );
            let auth = http["headers"]["Authorization"]
                .as_str()
                .unwrap_or_default();
            assert!(auth.starts_with("Bearer "), "{}", path.display());
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}
