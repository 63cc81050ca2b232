# The manifest's protection rules as a Rego policy (OPA-compatible), for the benchmark baseline.
# input.rules is the manifest's `protect` list, input.resource_changes the plan's (terraform show -json) and
# data.catalog the built-in catalog (bench/rego_eval.py passes them). deny holds every protected address.
package tfgate

import rego.v1

class_of(actions) := "delete" if actions == ["delete"]

class_of(actions) := "replace" if actions == ["delete", "create"]

class_of(actions) := "replace" if actions == ["create", "delete"]

class_of(actions) := "forget" if actions == ["forget"]

rule_actions(rule) := rule.actions if rule.actions

rule_actions(rule) := ["delete", "replace"] if not rule.actions

as_list(x) := x if is_array(x)

as_list(x) := [x] if is_string(x)

any_glob(patterns, value) if {
	some p in as_list(patterns)
	glob.match(p, ["\u0000"], value)
}

tags(rc) := object.union(object.get(rc.change.before, "tags_all", {}), object.get(rc.change.before, "tags", {})) if {
	is_object(rc.change.before)
}

tags(rc) := {} if not is_object(rc.change.before)

holds(m, key, _) if not m[key]

holds(m, key, value) if any_glob(m[key], value)

holds_tags(m, _) if not m.tags

holds_tags(m, rc) if {
	m.tags
	t := tags(rc)
	every k, v in m.tags {
		any_glob(v, object.get(t, k, ""))
	}
}

holds_catalog(m, _) if not m.catalog

holds_catalog(m, rc) if {
	some c in as_list(m.catalog)
	c in object.get(data.catalog, rc.type, [])
}

deny contains rc.address if {
	some rc in input.resource_changes
	cls := class_of(rc.change.actions)
	some rule in input.rules
	cls in rule_actions(rule)
	m := rule.match
	holds(m, "address", rc.address)
	holds(m, "type", rc.type)
	holds(m, "module", object.get(rc, "module_address", ""))
	holds_tags(m, rc)
	holds_catalog(m, rc)
}
