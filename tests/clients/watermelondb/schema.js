'use strict'
// PROVISIONAL app schema of the foodcheck mobile client (WatermelonDB), as plain data.
//
// The same column lists drive three things:
//   * the WatermelonDB appSchema / migrations used by the test devices (lib.js),
//   * the fake server's whitelists (fake-server.js),
//   * the README table the server engineer implements against.
//
// The scenarios run at version 2 unless they ask for another (CURRENT_VERSION is their
// default; LATEST_VERSION is the server's current one). Version 1 lacked the `photos` table and
// `inspections.server_flags`; versions 3 and 4 add the server's photo columns (size, EXIF,
// geofence flags, processing error) and `tasks.team`; version 5 adds review: the pull-only
// `reviews` table, `inspections.review_round` / `override_result` / `override_reason` and
// `tasks.kind`; version 6 adds 食品安全抽检: the pull-only `sampling_tasks`, `samples` (抽样单,
// with `task_id`) and `custody_events`, created on the device and never changed there;
// version 7 adds `sample_attachments` (the samplers' site/sample/seal photos, declared
// offline, with the server's processing status). See api-spec/sync.md: `appSchemaFor(7)` and
// `migrationsFor(7)` equal the appSchema and migrations `foodcheck sync-doc` prints
// (schema-doc.test.js checks it).

// type: 'string' | 'number' | 'boolean'; optional → nullable (default null instead of '' / 0 / false)
const TABLES = {
  // ---- read-only on device (server → device only) ----
  tasks: {
    readOnly: true,
    columns: [
      { name: 'plan_id', type: 'string' },
      { name: 'establishment_id', type: 'string', isIndexed: true },
      { name: 'template_id', type: 'string' },
      { name: 'template_version', type: 'number' },
      { name: 'due_date', type: 'string' },
      { name: 'state', type: 'string' },
      { name: 'must_check_items', type: 'string' }, // JSON array of item codes
      { name: 'round_title', type: 'string' },
      { name: 'team', type: 'string', sinceVersion: 4 }, // JSON [{user_id, name, badge_no, role}]
      { name: 'kind', type: 'string', sinceVersion: 5 }, // inspection | recheck
    ],
  },
  establishments: {
    readOnly: true,
    columns: [
      { name: 'sign_name', type: 'string' },
      { name: 'licensed_name', type: 'string' },
      { name: 'address', type: 'string' },
      { name: 'town', type: 'string' },
      { name: 'category', type: 'string' },
      { name: 'risk_grade', type: 'string' },
      { name: 'lng', type: 'number', isOptional: true },
      { name: 'lat', type: 'number', isOptional: true },
      { name: 'crs', type: 'string', isOptional: true },
    ],
  },
  checklist_versions: {
    readOnly: true,
    columns: [
      { name: 'template_id', type: 'string' },
      { name: 'version', type: 'number' },
      { name: 'title', type: 'string' },
      { name: 'content', type: 'string' }, // JSON document
    ],
  },
  // ---- written on device ----
  inspections: {
    readOnly: false,
    columns: [
      { name: 'task_id', type: 'string', isIndexed: true },
      { name: 'establishment_id', type: 'string' },
      { name: 'started_at', type: 'number' },
      { name: 'finished_at', type: 'number', isOptional: true },
      { name: 'lng', type: 'number', isOptional: true },
      { name: 'lat', type: 'number', isOptional: true },
      { name: 'gps_accuracy_m', type: 'number', isOptional: true },
      { name: 'crs', type: 'string', isOptional: true },
      { name: 'team', type: 'string' }, // JSON array of {user_id, name, badge_no}
      { name: 'representative_name', type: 'string', isOptional: true },
      { name: 'representative_signed', type: 'boolean' },
      { name: 'representative_refused', type: 'boolean' },
      { name: 'business_opinion', type: 'string', isOptional: true },
      { name: 'other_findings', type: 'string', isOptional: true },
      { name: 'declared_result', type: 'string', isOptional: true },
      { name: 'submitted', type: 'boolean' },
      // server-computed, read-only for the device (server ignores pushed values)
      { name: 'computed_result', type: 'string', isOptional: true, serverOnly: true },
      { name: 'review_state', type: 'string', isOptional: true, serverOnly: true },
      { name: 'server_flags', type: 'string', isOptional: true, serverOnly: true, sinceVersion: 2 },
      { name: 'review_round', type: 'number', serverOnly: true, sinceVersion: 5 },
      { name: 'override_result', type: 'string', isOptional: true, serverOnly: true, sinceVersion: 5 },
      { name: 'override_reason', type: 'string', isOptional: true, serverOnly: true, sinceVersion: 5 },
    ],
  },
  answers: {
    readOnly: false,
    columns: [
      { name: 'inspection_id', type: 'string', isIndexed: true },
      { name: 'item_code', type: 'string' },
      { name: 'status', type: 'string' }, // pass | fail | not_applicable
      { name: 'note', type: 'string', isOptional: true },
    ],
  },
  photos: {
    readOnly: false,
    sinceVersion: 2,
    columns: [
      { name: 'inspection_id', type: 'string', isIndexed: true },
      { name: 'item_code', type: 'string', isOptional: true },
      { name: 'sha256', type: 'string' },
      { name: 'byte_size', type: 'number' },
      { name: 'taken_at', type: 'number' },
      { name: 'processing_status', type: 'string', isOptional: true, serverOnly: true },
      { name: 'width', type: 'number', isOptional: true, serverOnly: true, sinceVersion: 3 },
      { name: 'height', type: 'number', isOptional: true, serverOnly: true, sinceVersion: 3 },
      { name: 'exif_taken_at', type: 'number', isOptional: true, serverOnly: true, sinceVersion: 3 },
      { name: 'exif_lng', type: 'number', isOptional: true, serverOnly: true, sinceVersion: 3 },
      { name: 'exif_lat', type: 'number', isOptional: true, serverOnly: true, sinceVersion: 3 },
      { name: 'flags', type: 'string', isOptional: true, serverOnly: true, sinceVersion: 3 },
      { name: 'processing_error', type: 'string', isOptional: true, serverOnly: true, sinceVersion: 4 },
    ],
  },
  // ---- read-only on device, since version 5: reviewers' decisions, one record each ----
  reviews: {
    readOnly: true,
    sinceVersion: 5,
    columns: [
      { name: 'inspection_id', type: 'string', isIndexed: true },
      { name: 'round', type: 'number' },
      { name: 'decision', type: 'string' }, // approved | returned | rejected
      { name: 'comment', type: 'string', isOptional: true },
      { name: 'item_comments', type: 'string' }, // JSON [{item_code, comment}]
      { name: 'override_result', type: 'string', isOptional: true },
      { name: 'override_reason', type: 'string', isOptional: true },
      { name: 'decided_at', type: 'number' },
      { name: 'reviewer_name', type: 'string' },
    ],
  },
  // ---- read-only on device, since version 6: the sampler's sampling tasks (抽检任务) ----
  sampling_tasks: {
    readOnly: true,
    sinceVersion: 6,
    columns: [
      { name: 'plan_id', type: 'string' },
      { name: 'plan_title', type: 'string' },
      { name: 'purpose', type: 'string' }, // supervision | risk_monitoring
      { name: 'stage', type: 'string' }, // production | circulation | catering
      { name: 'establishment_id', type: 'string', isIndexed: true },
      { name: 'premises_sign_name', type: 'string' },
      { name: 'premises_licensed_name', type: 'string' },
      { name: 'premises_address', type: 'string' },
      { name: 'premises_town', type: 'string' },
      { name: 'premises_licence_no', type: 'string', isOptional: true },
      { name: 'premises_credit_code', type: 'string', isOptional: true },
      { name: 'lab_id', type: 'string' },
      { name: 'lab_name', type: 'string' },
      { name: 'batches', type: 'string' }, // JSON [{category_code, batches}]
      { name: 'due_date', type: 'string' },
      { name: 'state', type: 'string' }, // assigned | cancelled
      { name: 'team', type: 'string' }, // JSON [{user_id, name, badge_no, role}]
    ],
  },
  // ---- since version 6: 食品安全抽检, created on the device and never changed there ----
  // (sampling forms; every form field optional: "/" = not applicable, null = missing)
  samples: {
    readOnly: false,
    sinceVersion: 6,
    columns: [
      { name: 'establishment_id', type: 'string' },
      { name: 'lab_id', type: 'string' },
      { name: 'category_code', type: 'string' },
      { name: 'task_id', type: 'string', isOptional: true, isIndexed: true }, // sampling_tasks, or null
      ...[
        'sampling_no', 'task_source', 'purpose', 'stage', 'food_category_1', 'food_category_2',
        'food_category_3', 'food_category_4', 'premises_name', 'premises_address',
        'premises_credit_code', 'premises_licence_no', 'premises_legal_representative',
        'premises_contact', 'producer_name', 'producer_address', 'producer_sc_licence',
        'sample_name', 'sample_brand', 'sample_specification', 'sample_production_date',
        'sample_batch', 'sample_shelf_life', 'sample_standard', 'sample_price',
      ].map((name) => ({ name, type: 'string', isOptional: true })),
      { name: 'sample_imported', type: 'boolean', isOptional: true },
      { name: 'sample_storage', type: 'string', isOptional: true },
      { name: 'sampling_method', type: 'string', isOptional: true },
      { name: 'sampling_base', type: 'number', isOptional: true },
      { name: 'sampling_base_unit', type: 'string', isOptional: true },
      { name: 'sample_quantity', type: 'number', isOptional: true },
      { name: 'sample_quantity_unit', type: 'string', isOptional: true },
      { name: 'backup_quantity', type: 'number', isOptional: true },
      { name: 'backup_quantity_unit', type: 'string', isOptional: true },
      { name: 'sampled_at', type: 'number', isOptional: true },
      { name: 'lng', type: 'number', isOptional: true },
      { name: 'lat', type: 'number', isOptional: true },
      { name: 'crs', type: 'string', isOptional: true },
      { name: 'gps_accuracy_m', type: 'number', isOptional: true },
      { name: 'sampler_1', type: 'string', isOptional: true },
      { name: 'sampler_2', type: 'string', isOptional: true },
      { name: 'premises_opinion', type: 'string', isOptional: true },
      { name: 'premises_opinion_text', type: 'string', isOptional: true },
      // server-computed
      { name: 'sample_no', type: 'string', isOptional: true, serverOnly: true },
      { name: 'state', type: 'string', isOptional: true, serverOnly: true },
      { name: 'seal_broken', type: 'boolean', serverOnly: true },
    ],
  },
  custody_events: {
    readOnly: false,
    sinceVersion: 6,
    columns: [
      { name: 'sample_id', type: 'string', isIndexed: true },
      { name: 'kind', type: 'string' }, // sealed | dispatched from a device; the lab's come by pull
      { name: 'occurred_at', type: 'number' },
      { name: 'place', type: 'string' },
      { name: 'note', type: 'string', isOptional: true },
      { name: 'sample_condition', type: 'string', isOptional: true },
      { name: 'seal_intact', type: 'boolean', isOptional: true },
      { name: 'actor_id', type: 'string', isOptional: true, serverOnly: true },
      { name: 'actor_role', type: 'string', isOptional: true, serverOnly: true },
      { name: 'recorded_at', type: 'number', isOptional: true, serverOnly: true },
    ],
  },
  // ---- since version 7: the samplers' photos of a sample, declared on the device ----
  sample_attachments: {
    readOnly: false,
    sinceVersion: 7,
    columns: [
      { name: 'sample_id', type: 'string', isIndexed: true },
      { name: 'kind', type: 'string' }, // site | sample | seal (the lab's report never syncs)
      { name: 'sha256', type: 'string' },
      { name: 'byte_size', type: 'number' },
      { name: 'taken_at', type: 'number' },
      { name: 'processing_status', type: 'string', isOptional: true, serverOnly: true },
      { name: 'processing_error', type: 'string', isOptional: true, serverOnly: true },
      { name: 'width', type: 'number', isOptional: true, serverOnly: true },
      { name: 'height', type: 'number', isOptional: true, serverOnly: true },
    ],
  },
}

const CURRENT_VERSION = 2
// The server's current schema version (src/sync/mod.rs CURRENT_SCHEMA_VERSION).
const LATEST_VERSION = 7

// Tables and columns that exist at a given schema version.
function tablesAtVersion(version) {
  const out = {}
  for (const [name, t] of Object.entries(TABLES)) {
    if ((t.sinceVersion || 1) > version) continue
    out[name] = {
      readOnly: t.readOnly,
      columns: t.columns.filter((c) => (c.sinceVersion || 1) <= version),
    }
  }
  return out
}

// WatermelonDB column spec (drops our extra keys)
function wmColumn(c) {
  const col = { name: c.name, type: c.type }
  if (c.isOptional) col.isOptional = true
  if (c.isIndexed) col.isIndexed = true
  return col
}

module.exports = { TABLES, CURRENT_VERSION, LATEST_VERSION, tablesAtVersion, wmColumn }
