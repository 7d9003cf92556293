//! Generates `api-spec/sync.md` from the schema in this module, so the document mobile teams
//! build against cannot drift from what the server does (a test compares the committed file).

use super::{tables_at, ColType, CURRENT_SCHEMA_VERSION, OLDEST_SCHEMA_VERSION, TABLES};

const PROTOCOL: &str = include_str!("protocol.md");

fn js_type(t: ColType) -> &'static str {
    t.name()
}

/// The WatermelonDB `appSchema` for the current version, ready to paste.
pub fn app_schema() -> String {
    let mut s = String::from("import { appSchema, tableSchema } from '@nozbe/watermelondb'\n\n");
    s.push_str(&format!(
        "export default appSchema({{\n  version: {CURRENT_SCHEMA_VERSION},\n  tables: [\n"
    ));
    for t in tables_at(CURRENT_SCHEMA_VERSION) {
        s.push_str(&format!(
            "    tableSchema({{\n      name: '{}',\n      columns: [\n",
            t.name
        ));
        for c in t.columns_at(CURRENT_SCHEMA_VERSION) {
            let mut extra = String::new();
            if c.optional {
                extra.push_str(", isOptional: true");
            }
            if c.indexed {
                extra.push_str(", isIndexed: true");
            }
            s.push_str(&format!(
                "        {{ name: '{}', type: '{}'{extra} }},\n",
                c.name,
                js_type(c.ty)
            ));
        }
        s.push_str("      ],\n    }),\n");
    }
    s.push_str("  ],\n})\n");
    s
}

/// WatermelonDB schema migrations from the oldest served version to the current one.
pub fn migrations() -> String {
    let mut s = String::from("import { schemaMigrations, createTable, addColumns } from '@nozbe/watermelondb/Schema/migrations'\n\nexport default schemaMigrations({\n  migrations: [\n");
    for v in (OLDEST_SCHEMA_VERSION + 1)..=CURRENT_SCHEMA_VERSION {
        s.push_str(&format!("    {{\n      toVersion: {v},\n      steps: [\n"));
        for t in TABLES {
            let cols = |t: &super::Table| {
                t.columns_at(v)
                    .filter(|c| t.since == v || c.since == v)
                    .map(|c| {
                        let mut extra = String::new();
                        if c.optional {
                            extra.push_str(", isOptional: true");
                        }
                        if c.indexed {
                            extra.push_str(", isIndexed: true");
                        }
                        format!(
                            "            {{ name: '{}', type: '{}'{extra} }},\n",
                            c.name,
                            js_type(c.ty)
                        )
                    })
                    .collect::<String>()
            };
            if t.since == v {
                s.push_str(&format!("        createTable({{\n          name: '{}',\n          columns: [\n{}          ],\n        }}),\n", t.name, cols(t)));
            } else if t.since < v && t.columns.iter().any(|c| c.since == v) {
                s.push_str(&format!("        addColumns({{\n          table: '{}',\n          columns: [\n{}          ],\n        }}),\n", t.name, cols(t)));
            }
        }
        s.push_str("      ],\n    },\n");
    }
    s.push_str("  ],\n})\n");
    s
}

/// The push limits and batching advice, with the built-in defaults.
fn limits() -> String {
    use super::push::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_RECORDS};
    format!(
        "\n## Push limits and large backlogs\n\n\
         `POST /api/v1/sync` has its own limits, sized for a week offline (1,000 inspections × 35 answers \
         plus their photo records: about 40,000 records and 10 MB of WatermelonDB JSON), because \
         WatermelonDB 0.28 `synchronize()` sends every unsynced record in one push:\n\n\
         | setting | default | above it |\n|---|---|---|\n\
         | `max_sync_body_bytes` | {} bytes ({} MiB), as sent and, for a compressed push, once decompressed | 413 `payload_too_large`, nothing applied |\n\
         | `max_sync_records` | {} records (created + updated + deleted, all tables) | 413 `payload_too_large`, nothing applied |\n\n\
         The operator may change both (see the README's configuration table); other JSON endpoints keep \
         `max_json_body_bytes`. The server reads the records one at a time straight from the body into typed \
         rows, never holding a JSON tree of the whole push.\n\n\
         A 413 is final for that body: retrying the same push can never succeed. Clients that can batch \
         should push at most a few thousand records at a time (e.g. one inspection with its answers and \
         photo records per push, parents before children: an answer or photo whose inspection is neither \
         stored nor in the same push is refused `unknown_inspection`), each push with the cursor of the \
         latest pull, and pull between pushes. Every push is all-or-nothing on its own, so an interrupted \
         series leaves the server with whole pushes only. WatermelonDB 0.28 cannot split a push, so a \
         WatermelonDB app stays within the limits by syncing whenever it has a network, at least weekly.\n",
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_MAX_BODY_BYTES / (1024 * 1024),
        DEFAULT_MAX_RECORDS
    )
}

/// The whole `api-spec/sync.md`.
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str("<!-- Generated from src/sync (cargo run -- sync-doc --write api-spec/sync.md); do not edit by hand. -->\n\n");
    s.push_str(PROTOCOL);
    s.push_str(&limits());
    s.push_str(&format!(
        "\n## Tables (client schema version {CURRENT_SCHEMA_VERSION}; version {OLDEST_SCHEMA_VERSION} is still served)\n\n\
         Every record also has `id` (string). WatermelonDB's `_status` and `_changed` are ignored by the server.\n\
         Types are WatermelonDB column types: `string`, `number` (JSON number), `boolean` (JSON true/false).\n\
         *Optional* columns may be null. *Server* columns are set by the server only: pushed values are ignored.\n"
    ));
    for t in TABLES {
        s.push_str(&format!(
            "\n### `{}`{}{}\n\n{}\n\n| column | type | optional | indexed | written by | since | meaning |\n|---|---|---|---|---|---|---|\n",
            t.name,
            if t.read_only {
                " (read-only on the device)"
            } else if super::CREATE_ONLY.contains(&t.name) {
                " (create-only on the device)"
            } else {
                ""
            },
            if t.since > OLDEST_SCHEMA_VERSION { format!(" (since version {})", t.since) } else { String::new() },
            t.doc
        ));
        for c in t.columns {
            s.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {} |\n",
                c.name,
                c.ty.name(),
                if c.optional { "yes" } else { "no" },
                if c.indexed { "yes" } else { "" },
                if t.read_only || c.server_only {
                    "server"
                } else {
                    "device"
                },
                c.since,
                c.doc
            ));
        }
    }
    s.push_str("\n## WatermelonDB `appSchema` (paste into the app)\n\n```js\n");
    s.push_str(&app_schema());
    s.push_str("```\n\n## WatermelonDB migrations\n\n```js\n");
    s.push_str(&migrations());
    s.push_str("```\n");
    s
}
