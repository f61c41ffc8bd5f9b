//! The IAM collector (global): users with their console access, MFA, groups, policies and
//! access keys; groups and their members; roles with their trust policy and last use;
//! customer-managed policies with their default version; the account's aliases and password
//! policy. One task per user, group, role and policy, every call under the shared limit.

use crate::kind::Kind;
use crate::snapshot::Item;
use aws_sdk_iam::types::{AttachedPolicy, PasswordPolicy};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{Call, Failure, Found, Scope, all_pages, names, policy_document, text, time, time_value};

pub(crate) async fn collect(scope: &Scope) -> Found {
    let (users, groups, roles, policies, account) = tokio::join!(
        users(scope),
        groups(scope),
        roles(scope),
        policies(scope),
        account(scope)
    );
    let mut found = Found::default();
    for part in [users, groups, roles, policies, account] {
        found.merge(part);
    }
    found
}

fn call<'a>(operation: &'a str, resource: &'a str) -> Call<'a> {
    Call {
        service: "iam",
        operation,
        region: None,
        resource,
    }
}

fn policy_arns(pages: Option<Vec<&[AttachedPolicy]>>) -> Value {
    pages.map_or(Value::Null, |pages| {
        names(pages.into_iter().flatten().filter_map(AttachedPolicy::policy_arn))
    })
}

/// The shape of users, groups, roles and policies: one listing (every page), then the details
/// of each listed element in a task of its own, under the shared limit.
async fn each_listed<T, F, Fut>(scope: &Scope, operation: &str, listed: Result<Vec<T>, Failure>, details: F) -> Found
where
    T: Send + 'static,
    F: Fn(Scope, T) -> Fut,
    Fut: Future<Output = Found> + Send + 'static,
{
    let mut found = Found::default();
    let Some(elements) = found.take(listed) else {
        return found;
    };
    let mut tasks = JoinSet::new();
    for element in elements {
        tasks.spawn(details(scope.clone(), element));
    }
    found.join(tasks, "iam", operation).await;
    found
}

async fn users(scope: &Scope) -> Found {
    let iam = scope.aws.iam();
    let listed = scope
        .call(call("ListUsers", "iam users"), async {
            all_pages!(iam.list_users().into_paginator().send())
        })
        .await;
    let listed = listed.map(|pages| pages.into_iter().flat_map(|p| p.users).collect());
    each_listed(scope, "ListUsers", listed, user_details).await
}

async fn user_details(scope: Scope, user: aws_sdk_iam::types::User) -> Found {
    let mut found = Found::default();
    let iam = scope.aws.iam();
    let name = user.user_name();
    let resource = format!("iam user {name}");
    let on = |operation| call(operation, &resource);
    let (login, mfa, groups, attached, inline, keys) = tokio::join!(
        scope.call_allowing(
            on("GetLoginProfile"),
            &["NoSuchEntity"],
            iam.get_login_profile().user_name(name).send()
        ),
        scope.call(on("ListMFADevices"), async {
            all_pages!(iam.list_mfa_devices().user_name(name).into_paginator().send())
        }),
        scope.call(on("ListGroupsForUser"), async {
            all_pages!(iam.list_groups_for_user().user_name(name).into_paginator().send())
        }),
        scope.call(on("ListAttachedUserPolicies"), async {
            all_pages!(
                iam.list_attached_user_policies()
                    .user_name(name)
                    .into_paginator()
                    .send()
            )
        }),
        scope.call(on("ListUserPolicies"), async {
            all_pages!(iam.list_user_policies().user_name(name).into_paginator().send())
        }),
        scope.call(on("ListAccessKeys"), async {
            all_pages!(iam.list_access_keys().user_name(name).into_paginator().send())
        }),
    );
    let mut item = Item::new(Kind::IamUser, user.user_id(), name)
        .with("path", user.path())
        .with("password_last_used", time_value(user.password_last_used()));
    item.arn = Some(user.arn().to_string());
    item.created = time(user.create_date());
    // A call that failed leaves its attribute null: unknown, not empty.
    let login = found.take(login);
    item = item.with("login_profile", login.map_or(Value::Null, |l| Value::Bool(l.is_some())));
    let mfa = found.take(mfa).map_or(Value::Null, |pages| {
        names(pages.iter().flat_map(|p| p.mfa_devices()).map(|d| d.serial_number()))
    });
    let groups = found.take(groups).map_or(Value::Null, |pages| {
        names(pages.iter().flat_map(|p| p.groups()).map(|g| g.group_name()))
    });
    let attached = found.take(attached);
    let attached = policy_arns(
        attached
            .as_ref()
            .map(|p| p.iter().map(|p| p.attached_policies()).collect()),
    );
    let inline = found.take(inline).map_or(Value::Null, |pages| {
        names(pages.iter().flat_map(|p| p.policy_names()).map(String::as_str))
    });
    found.items.push(
        item.with("mfa_devices", mfa)
            .with("groups", groups)
            .with("attached_policies", attached)
            .with("inline_policies", inline),
    );
    let keys = found.take(keys).unwrap_or_default();
    for key in keys.iter().flat_map(|p| p.access_key_metadata()) {
        let Some(id) = key.access_key_id() else {
            continue;
        };
        let key_resource = format!("access key {id} of iam user {name}");
        let used = scope
            .call(
                call("GetAccessKeyLastUsed", &key_resource),
                iam.get_access_key_last_used().access_key_id(id).send(),
            )
            .await;
        let used = found.take(used);
        let last = used.as_ref().and_then(|u| u.access_key_last_used());
        // "N/A" is how IAM says a key was never used.
        let known = |v: &str| text(Some(v).filter(|v| *v != "N/A"));
        let mut item = Item::new(Kind::AccessKey, id, id)
            .with("user", key.user_name().unwrap_or(name))
            .with("status", text(key.status().map(|s| s.as_str())))
            .with("last_used", time_value(last.and_then(|l| l.last_used_date())))
            .with(
                "last_used_service",
                last.map_or(Value::Null, |l| known(l.service_name())),
            )
            .with("last_used_region", last.map_or(Value::Null, |l| known(l.region())));
        item.created = key.create_date().and_then(time);
        found.items.push(item);
    }
    found
}

async fn groups(scope: &Scope) -> Found {
    let iam = scope.aws.iam();
    let listed = scope
        .call(call("ListGroups", "iam groups"), async {
            all_pages!(iam.list_groups().into_paginator().send())
        })
        .await;
    let listed = listed.map(|pages| pages.into_iter().flat_map(|p| p.groups).collect());
    each_listed(scope, "ListGroups", listed, group_details).await
}

async fn group_details(scope: Scope, group: aws_sdk_iam::types::Group) -> Found {
    let mut found = Found::default();
    let iam = scope.aws.iam();
    let name = group.group_name();
    let resource = format!("iam group {name}");
    let on = |operation| call(operation, &resource);
    let (members, attached, inline) = tokio::join!(
        scope.call(on("GetGroup"), async {
            all_pages!(iam.get_group().group_name(name).into_paginator().send())
        }),
        scope.call(on("ListAttachedGroupPolicies"), async {
            all_pages!(
                iam.list_attached_group_policies()
                    .group_name(name)
                    .into_paginator()
                    .send()
            )
        }),
        scope.call(on("ListGroupPolicies"), async {
            all_pages!(iam.list_group_policies().group_name(name).into_paginator().send())
        }),
    );
    let members = found.take(members).map_or(Value::Null, |pages| {
        names(pages.iter().flat_map(|p| p.users()).map(|u| u.user_name()))
    });
    let attached = found.take(attached);
    let attached = policy_arns(
        attached
            .as_ref()
            .map(|p| p.iter().map(|p| p.attached_policies()).collect()),
    );
    let inline = found.take(inline).map_or(Value::Null, |pages| {
        names(pages.iter().flat_map(|p| p.policy_names()).map(String::as_str))
    });
    let mut item = Item::new(Kind::IamGroup, group.group_id(), name)
        .with("members", members)
        .with("attached_policies", attached)
        .with("inline_policies", inline);
    item.arn = Some(group.arn().to_string());
    item.created = time(group.create_date());
    found.items.push(item);
    found
}

async fn roles(scope: &Scope) -> Found {
    let iam = scope.aws.iam();
    let listed = scope
        .call(call("ListRoles", "iam roles"), async {
            all_pages!(iam.list_roles().into_paginator().send())
        })
        .await;
    let listed = listed.map(|pages| pages.into_iter().flat_map(|p| p.roles).collect());
    each_listed(scope, "ListRoles", listed, role_details).await
}

async fn role_details(scope: Scope, listed: aws_sdk_iam::types::Role) -> Found {
    let mut found = Found::default();
    let iam = scope.aws.iam();
    let name = listed.role_name();
    let resource = format!("iam role {name}");
    let on = |operation| call(operation, &resource);
    // ListRoles leaves out when a role was last used; GetRole has it.
    let (role, attached, inline) = tokio::join!(
        scope.call(on("GetRole"), iam.get_role().role_name(name).send()),
        scope.call(on("ListAttachedRolePolicies"), async {
            all_pages!(
                iam.list_attached_role_policies()
                    .role_name(name)
                    .into_paginator()
                    .send()
            )
        }),
        scope.call(on("ListRolePolicies"), async {
            all_pages!(iam.list_role_policies().role_name(name).into_paginator().send())
        }),
    );
    let role = found.take(role);
    let role = role.as_ref().and_then(|r| r.role()).unwrap_or(&listed);
    let last_used = role.role_last_used();
    let attached = found.take(attached);
    let attached = policy_arns(
        attached
            .as_ref()
            .map(|p| p.iter().map(|p| p.attached_policies()).collect()),
    );
    let inline = found.take(inline).map_or(Value::Null, |pages| {
        names(pages.iter().flat_map(|p| p.policy_names()).map(String::as_str))
    });
    let mut item = Item::new(Kind::IamRole, role.role_id(), name)
        .with("path", role.path())
        .with(
            "trust_policy",
            role.assume_role_policy_document().map_or(Value::Null, policy_document),
        )
        .with("last_used", time_value(last_used.and_then(|l| l.last_used_date())))
        .with("last_used_region", text(last_used.and_then(|l| l.region())))
        .with("attached_policies", attached)
        .with("inline_policies", inline);
    item.arn = Some(role.arn().to_string());
    item.created = time(role.create_date());
    found.items.push(item);
    found
}

async fn policies(scope: &Scope) -> Found {
    let iam = scope.aws.iam();
    let listed = scope
        .call(call("ListPolicies", "iam customer-managed policies"), async {
            all_pages!(
                iam.list_policies()
                    .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                    .into_paginator()
                    .send()
            )
        })
        .await;
    let listed = listed.map(|pages| pages.into_iter().flat_map(|p| p.policies.unwrap_or_default()).collect());
    each_listed(scope, "ListPolicies", listed, policy_details).await
}

async fn policy_details(scope: Scope, policy: aws_sdk_iam::types::Policy) -> Found {
    let mut found = Found::default();
    let (Some(id), Some(arn)) = (policy.policy_id(), policy.arn()) else {
        return found;
    };
    let name = policy.policy_name().unwrap_or(arn);
    let version = policy.default_version_id();
    let mut document = Value::Null;
    if let Some(version) = version {
        let iam = scope.aws.iam();
        let resource = format!("iam policy {arn} version {version}");
        let got = scope
            .call(
                call("GetPolicyVersion", &resource),
                iam.get_policy_version().policy_arn(arn).version_id(version).send(),
            )
            .await;
        if let Some(got) = found.take(got) {
            document = got
                .policy_version()
                .and_then(|v| v.document())
                .map_or(Value::Null, policy_document);
        }
    }
    let mut item = Item::new(Kind::IamPolicy, id, name)
        .with("default_version", text(version))
        .with("document", document)
        .with(
            "attachment_count",
            policy.attachment_count().map_or(Value::Null, Value::from),
        );
    item.arn = Some(arn.to_string());
    item.created = policy.create_date().and_then(time);
    found.items.push(item);
    found
}

async fn account(scope: &Scope) -> Found {
    let mut found = Found::default();
    let iam = scope.aws.iam();
    let (aliases, password) = tokio::join!(
        scope.call(call("ListAccountAliases", "iam account aliases"), async {
            all_pages!(iam.list_account_aliases().into_paginator().send())
        }),
        scope.call_allowing(
            call("GetAccountPasswordPolicy", "iam account password policy"),
            &["NoSuchEntity"],
            iam.get_account_password_policy().send()
        ),
    );
    let aliases: Option<Vec<String>> = found
        .take(aliases)
        .map(|pages| pages.into_iter().flat_map(|p| p.account_aliases).collect());
    let password = found.take(password).map(|got| {
        got.as_ref()
            .and_then(|g| g.password_policy())
            .map_or(Value::Null, password_policy)
    });
    let id = scope.account_id.as_deref().unwrap_or("account");
    let name = aliases.as_ref().and_then(|a| a.first()).map_or(id, String::as_str);
    let item = Item::new(Kind::Account, id, name)
        .with(
            "aliases",
            aliases
                .as_ref()
                .map_or(Value::Null, |a| names(a.iter().map(String::as_str))),
        )
        .with("password_policy", password.unwrap_or(Value::Null));
    found.items.push(item);
    found
}

fn password_policy(policy: &PasswordPolicy) -> Value {
    json!({
        "minimum_password_length": policy.minimum_password_length(),
        "require_symbols": policy.require_symbols(),
        "require_numbers": policy.require_numbers(),
        "require_uppercase_characters": policy.require_uppercase_characters(),
        "require_lowercase_characters": policy.require_lowercase_characters(),
        "allow_users_to_change_password": policy.allow_users_to_change_password(),
        "expire_passwords": policy.expire_passwords(),
        "max_password_age": policy.max_password_age(),
        "password_reuse_prevention": policy.password_reuse_prevention(),
        "hard_expiry": policy.hard_expiry(),
    })
}
