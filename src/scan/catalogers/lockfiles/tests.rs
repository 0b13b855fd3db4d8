use super::*;

fn found(out: &CatalogOutput) -> Vec<(&str, &str)> {
    out.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect()
}

#[test]
fn cargo_lock() {
    let lock = "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n";
    let fs = VirtualFs::from_files(&[("src/app/Cargo.lock", lock), ("other/Cargo.lock", "not = [toml")]);
    let out = CargoLockCataloger.catalog(&fs, None);
    assert_eq!(found(&out), vec![("smallvec", "1.6.0"), ("app", "0.1.0")]);
    assert_eq!(out.packages[0].purl, "pkg:cargo/smallvec@1.6.0");
    assert_eq!(out.warnings.len(), 1);
    assert!(out.warnings[0].starts_with("/other/Cargo.lock"));
}

#[test]
fn package_lock_v1_and_v3() {
    let v3 = r#"{"name":"app","version":"1.0.0","lockfileVersion":3,"packages":{
        "":{"name":"app","version":"1.0.0"},
        "node_modules/lodash":{"version":"4.17.4"},
        "node_modules/@babel/core":{"version":"7.0.0"},
        "node_modules/a/node_modules/minimist":{"version":"0.0.8"},
        "packages/lib":{"name":"lib","link":true}}}"#;
    let v1 = r#"{"lockfileVersion":1,"dependencies":{"semver":{"version":"5.7.1","dependencies":{"ms":{"version":"2.0.0"}}},"local":{"version":"file:../local"}}}"#;
    let fs = VirtualFs::from_files(&[
        ("web/package-lock.json", v3),
        ("old/package-lock.json", v1),
        ("web/node_modules/x/package-lock.json", "{}"),
    ]);
    let out = NpmLockCataloger.catalog(&fs, None);
    assert_eq!(
        found(&out),
        vec![
            ("semver", "5.7.1"),
            ("ms", "2.0.0"),
            ("app", "1.0.0"),
            ("@babel/core", "7.0.0"),
            ("minimist", "0.0.8"),
            ("lodash", "4.17.4")
        ]
    );
    assert!(out.packages.iter().any(|p| p.purl == "pkg:npm/%40babel/core@7.0.0"));
}

#[test]
fn composer_installed_and_lock() {
    let installed = r#"{"packages":[{"name":"monolog/monolog","version":"2.9.1","license":["MIT"]}]}"#;
    let v1 = r#"[{"name":"symfony/yaml","version":"v4.4.0"}]"#;
    let lock = r#"{"packages":[{"name":"guzzlehttp/guzzle","version":"7.4.0"}],"packages-dev":[{"name":"phpunit/phpunit","version":"9.5.0"}]}"#;
    let fs = VirtualFs::from_files(&[
        ("app/vendor/composer/installed.json", installed),
        ("old/vendor/composer/installed.json", v1),
        ("app/composer.lock", lock),
    ]);
    let out = ComposerCataloger.catalog(&fs, None);
    assert_eq!(
        found(&out),
        vec![("guzzlehttp/guzzle", "7.4.0"), ("monolog/monolog", "2.9.1"), ("symfony/yaml", "v4.4.0")]
    );
    assert_eq!(out.packages[1].purl, "pkg:composer/monolog/monolog@2.9.1");
    assert_eq!(out.packages[1].licenses, vec!["MIT"]);
}

#[test]
fn dotnet_deps_json_packages_and_projects() {
    let deps = r#"{"libraries":{"MyApp/1.0.0":{"type":"project"},"Newtonsoft.Json/12.0.1":{"type":"package","sha512":"x"},"System.Text.Json/6.0.0":{"type":"package"}}}"#;
    let fs = VirtualFs::from_files(&[("app/MyApp.deps.json", deps)]);
    let out = DotnetDepsCataloger.catalog(&fs, None);
    assert_eq!(found(&out), vec![("MyApp", "1.0.0"), ("Newtonsoft.Json", "12.0.1"), ("System.Text.Json", "6.0.0")]);
    assert_eq!(out.packages[1].purl, "pkg:nuget/Newtonsoft.Json@12.0.1");
}

#[test]
fn requirements_pinned_lines_only() {
    let text = "# deps\nDjango==2.2.0\nrequests[security]==2.19.0 ; python_version >= \"3\"\nurllib3==1.24.1 \\\n    --hash=sha256:abc\nflask>=1.0\n-r other.txt\nPyYAML==5.3.1  # pinned\nfoo==1.*\n";
    let fs = VirtualFs::from_files(&[("app/requirements.txt", text), ("app/requirements-dev.txt", "pytest==7.0.0\n")]);
    assert!(!RequirementsCataloger.wants("app/reqs.txt"));
    let out = RequirementsCataloger.catalog(&fs, None);
    assert_eq!(
        found(&out),
        vec![
            ("pytest", "7.0.0"),
            ("Django", "2.2.0"),
            ("requests", "2.19.0"),
            ("urllib3", "1.24.1"),
            ("PyYAML", "5.3.1")
        ]
    );
    assert_eq!(out.packages[4].purl, "pkg:pypi/pyyaml@5.3.1");
}

#[test]
fn go_mod_requires_with_replacements() {
    let text = "module example.com/app\n\ngo 1.21\n\nrequire github.com/pkg/errors v0.9.1\n\nrequire (\n\tgolang.org/x/net v0.17.0 // indirect\n\tgithub.com/old/lib v1.0.0\n)\n\nreplace github.com/old/lib => github.com/fork/lib v1.0.1\n";
    let fs = VirtualFs::from_files(&[("go.mod", text)]);
    let out = GoModCataloger.catalog(&fs, None);
    assert_eq!(
        found(&out),
        vec![("github.com/pkg/errors", "v0.9.1"), ("golang.org/x/net", "v0.17.0"), ("github.com/fork/lib", "v1.0.1")]
    );
    assert_eq!(out.packages[0].purl, "pkg:golang/github.com/pkg/errors@v0.9.1");
}

#[test]
fn lock_files_are_read_for_directories_only() {
    assert!(
        CargoLockCataloger.directory_only() && NpmLockCataloger.directory_only() && GoModCataloger.directory_only()
    );
    assert!(!ComposerCataloger.directory_only() && !DotnetDepsCataloger.directory_only());
}

#[test]
fn yarn_v1_and_berry() {
    let v1 = "# yarn lockfile v1\n\n\n\"@babel/helper-validator-identifier@7.22.5\":\n  version \"7.22.5\"\n  resolved \"https://registry.yarnpkg.com/x.tgz\"\n\nlodash@4.17.4, lodash@^4.17.0:\n  version \"4.17.4\"\n";
    let berry = "__metadata:\n  version: 6\n  cacheKey: 8\n\n\"minimist@npm:0.0.8\":\n  version: 0.0.8\n  resolution: \"minimist@npm:0.0.8\"\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n";
    let fs = VirtualFs::from_files(&[("a/yarn.lock", v1), ("b/yarn.lock", berry)]);
    let out = YarnLockCataloger.catalog(&fs, None);
    assert_eq!(
        found(&out),
        vec![("@babel/helper-validator-identifier", "7.22.5"), ("lodash", "4.17.4"), ("minimist", "0.0.8")]
    );
}

#[test]
fn yarn_entries_may_start_with_any_character() {
    // Valid UTF-8 whose first character is several bytes long: read, not a panic.
    let lock = "é@1.0.0:\n  version \"1.0.0\"\n\n\"日本@^2\":\n  version \"2.0.1\"\n\n@:\n  version \"3\"\n";
    let fs = VirtualFs::from_files(&[("a/yarn.lock", lock)]);
    let out = YarnLockCataloger.catalog(&fs, None);
    assert_eq!(found(&out), vec![("é", "1.0.0"), ("日本", "2.0.1"), ("@", "3")]);
}

#[test]
fn pnpm_keys_of_every_lockfile_version() {
    for (key, name, version) in [
        ("/lodash/4.17.4", "lodash", "4.17.4"),
        ("/@babel/core/7.0.0_react@18.0.0", "@babel/core", "7.0.0"),
        ("/lodash@4.17.4", "lodash", "4.17.4"),
        ("/@babel/core@7.0.0(react@18.0.0)", "@babel/core", "7.0.0"),
        ("minimist@0.0.8", "minimist", "0.0.8"),
    ] {
        assert_eq!(pnpm_key(key), Some((name.to_string(), version.to_string())), "{key}");
    }
    let lock = "lockfileVersion: '6.0'\n\ndependencies:\n  lodash:\n    specifier: 4.17.4\n    version: 4.17.4\n\npackages:\n\n  /lodash@4.17.4:\n    resolution: {integrity: sha512-x}\n    dev: false\n";
    let out = PnpmLockCataloger.catalog(&VirtualFs::from_files(&[("web/pnpm-lock.yaml", lock)]), None);
    assert_eq!(found(&out), vec![("lodash", "4.17.4")]);
}

#[test]
fn poetry_and_pipfile_locks() {
    let poetry = "[[package]]\nname = \"Django\"\nversion = \"2.2.0\"\ndescription = \"x\"\noptional = false\npython-versions = \">=3.5\"\n\n[metadata]\nlock-version = \"2.0\"\n";
    let pipfile = r#"{"_meta":{"hash":{"sha256":"x"}},"default":{"urllib3":{"hashes":["sha256:a"],"version":"==1.24.1"}},"develop":{"pytest":{"version":"==7.0.0"}}}"#;
    let fs = VirtualFs::from_files(&[("p/poetry.lock", poetry), ("q/Pipfile.lock", pipfile)]);
    assert_eq!(found(&PoetryLockCataloger.catalog(&fs, None)), vec![("Django", "2.2.0")]);
    assert_eq!(found(&PipfileLockCataloger.catalog(&fs, None)), vec![("urllib3", "1.24.1")]);
}
