//! BTCPay Greenfield permissions: policy strings such as `btcpay.store.cancreateinvoice`,
//! optionally scoped to one store (`btcpay.store.cancreateinvoice:<storeId>`), and the
//! hierarchy in which a broader policy grants narrower ones (`canmodifystoresettings` grants
//! `canmodifyinvoices`, which grants `cancreateinvoice`, …), as BTCPay 2.x defines them.

use std::fmt;

/// Unrestricted access: every policy, every store.
pub const UNRESTRICTED: &str = "unrestricted";
/// Modify the store's settings (and everything below it).
pub const CAN_MODIFY_STORE_SETTINGS: &str = "btcpay.store.canmodifystoresettings";
/// View the store's settings.
pub const CAN_VIEW_STORE_SETTINGS: &str = "btcpay.store.canviewstoresettings";
/// Create invoices.
pub const CAN_CREATE_INVOICE: &str = "btcpay.store.cancreateinvoice";
/// View invoices.
pub const CAN_VIEW_INVOICES: &str = "btcpay.store.canviewinvoices";
/// Modify invoices (archive, mark, update).
pub const CAN_MODIFY_INVOICES: &str = "btcpay.store.canmodifyinvoices";
/// Add, change and remove webhooks.
pub const CAN_MODIFY_WEBHOOKS: &str = "btcpay.store.webhooks.canmodifywebhooks";
/// View payment requests (and pay them: make an invoice for one).
pub const CAN_VIEW_PAYMENT_REQUESTS: &str = "btcpay.store.canviewpaymentrequests";
/// Create, change and archive payment requests (and everything viewing them allows).
pub const CAN_MODIFY_PAYMENT_REQUESTS: &str = "btcpay.store.canmodifypaymentrequests";
/// Create, archive and manage pull payments and their payouts.
pub const CAN_MANAGE_PULL_PAYMENTS: &str = "btcpay.store.canmanagepullpayments";
/// Archive pull payments.
pub const CAN_ARCHIVE_PULL_PAYMENTS: &str = "btcpay.store.canarchivepullpayments";
/// Create pull payments, also auto-approved ones, and approved payouts.
pub const CAN_CREATE_PULL_PAYMENTS: &str = "btcpay.store.cancreatepullpayments";
/// Create pull payments whose claims need approval, and payouts awaiting approval.
pub const CAN_CREATE_NON_APPROVED_PULL_PAYMENTS: &str = "btcpay.store.cancreatenonapprovedpullpayments";
/// View pull payments and payouts.
pub const CAN_VIEW_PULL_PAYMENTS: &str = "btcpay.store.canviewpullpayments";
/// View the user's profile.
pub const CAN_VIEW_PROFILE: &str = "btcpay.user.canviewprofile";

/// Every policy BTCPay knows, lowercase.
const POLICIES: &[&str] = &[
    UNRESTRICTED,
    CAN_MODIFY_STORE_SETTINGS,
    CAN_VIEW_STORE_SETTINGS,
    CAN_CREATE_INVOICE,
    CAN_VIEW_INVOICES,
    CAN_MODIFY_INVOICES,
    CAN_MODIFY_WEBHOOKS,
    CAN_VIEW_PROFILE,
    "btcpay.store.canviewreports",
    CAN_VIEW_PAYMENT_REQUESTS,
    CAN_MODIFY_PAYMENT_REQUESTS,
    CAN_MANAGE_PULL_PAYMENTS,
    CAN_ARCHIVE_PULL_PAYMENTS,
    CAN_CREATE_PULL_PAYMENTS,
    CAN_CREATE_NON_APPROVED_PULL_PAYMENTS,
    CAN_VIEW_PULL_PAYMENTS,
    "btcpay.store.canmanagepayouts",
    "btcpay.store.canviewpayouts",
    "btcpay.store.canmodifyofferings",
    "btcpay.store.canviewofferings",
    "btcpay.store.canuselightningnode",
    "btcpay.store.canviewlightninginvoice",
    "btcpay.store.cancreatelightninginvoice",
    "btcpay.user.canmodifyprofile",
    "btcpay.user.candeleteuser",
    "btcpay.user.canmanagenotificationsforuser",
    "btcpay.user.canviewnotificationsforuser",
    "btcpay.server.canmodifyserversettings",
    "btcpay.server.canuseinternallightningnode",
    "btcpay.server.cancreatelightninginvoiceinternalnode",
    "btcpay.server.canviewlightninginvoiceinternalnode",
    "btcpay.server.canviewusers",
    "btcpay.server.cancreateuser",
    "btcpay.server.canmanageusers",
];

/// The policies each policy grants directly (the rest follow by transitivity).
const GRANTS: &[(&str, &[&str])] = &[
    (
        CAN_MODIFY_STORE_SETTINGS,
        &[
            CAN_MANAGE_PULL_PAYMENTS,
            CAN_MODIFY_INVOICES,
            CAN_VIEW_STORE_SETTINGS,
            CAN_MODIFY_WEBHOOKS,
            CAN_MODIFY_PAYMENT_REQUESTS,
            "btcpay.store.canmanagepayouts",
            "btcpay.store.canmodifyofferings",
            "btcpay.store.canuselightningnode",
        ],
    ),
    ("btcpay.server.canmanageusers", &["btcpay.server.cancreateuser"]),
    (
        CAN_MANAGE_PULL_PAYMENTS,
        &[CAN_CREATE_PULL_PAYMENTS, CAN_ARCHIVE_PULL_PAYMENTS],
    ),
    (CAN_CREATE_PULL_PAYMENTS, &[CAN_CREATE_NON_APPROVED_PULL_PAYMENTS]),
    (CAN_CREATE_NON_APPROVED_PULL_PAYMENTS, &[CAN_VIEW_PULL_PAYMENTS]),
    (CAN_MODIFY_PAYMENT_REQUESTS, &[CAN_VIEW_PAYMENT_REQUESTS]),
    ("btcpay.user.canmodifyprofile", &[CAN_VIEW_PROFILE]),
    ("btcpay.store.canmodifyofferings", &["btcpay.store.canviewofferings"]),
    (
        "btcpay.store.canuselightningnode",
        &[
            "btcpay.store.canviewlightninginvoice",
            "btcpay.store.cancreatelightninginvoice",
        ],
    ),
    (
        "btcpay.user.canmanagenotificationsforuser",
        &["btcpay.user.canviewnotificationsforuser"],
    ),
    (
        "btcpay.server.canmodifyserversettings",
        &[
            "btcpay.server.canuseinternallightningnode",
            "btcpay.server.canmanageusers",
        ],
    ),
    (
        "btcpay.server.canuseinternallightningnode",
        &[
            "btcpay.server.cancreatelightninginvoiceinternalnode",
            "btcpay.server.canviewlightninginvoiceinternalnode",
        ],
    ),
    (
        CAN_MODIFY_INVOICES,
        &[
            CAN_VIEW_INVOICES,
            CAN_CREATE_INVOICE,
            "btcpay.store.cancreatelightninginvoice",
        ],
    ),
    (
        CAN_VIEW_STORE_SETTINGS,
        &[
            CAN_VIEW_INVOICES,
            CAN_VIEW_PAYMENT_REQUESTS,
            "btcpay.store.canviewreports",
            CAN_VIEW_PULL_PAYMENTS,
            "btcpay.store.canviewpayouts",
        ],
    ),
    ("btcpay.store.canmanagepayouts", &["btcpay.store.canviewpayouts"]),
];

/// Whether `policy` grants `wanted` (itself, or through the hierarchy).
fn grants(policy: &str, wanted: &str) -> bool {
    if policy == UNRESTRICTED || policy == wanted {
        return true;
    }
    GRANTS
        .iter()
        .filter(|(p, _)| *p == policy)
        .flat_map(|(_, children)| children.iter())
        .any(|child| grants(child, wanted))
}

/// One permission of a key: a policy, and for store policies optionally one store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    policy: &'static str,
    store: Option<String>,
}

/// Why a permission string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission `{0}`")]
pub struct InvalidPermission(pub String);

impl Permission {
    /// Reads `policy` or `policy:storeId` as BTCPay does: the policy is case-insensitive, and
    /// only store policies take a store.
    pub fn parse(text: &str) -> Result<Permission, InvalidPermission> {
        let invalid = || InvalidPermission(text.to_string());
        let text = text.trim();
        let (policy, store) = match text.split_once(':') {
            Some((policy, store)) if !store.is_empty() => (policy, Some(store.to_string())),
            Some(_) => return Err(invalid()),
            None => (text, None),
        };
        let policy = POLICIES
            .iter()
            .copied()
            .find(|p| p.eq_ignore_ascii_case(policy))
            .ok_or_else(invalid)?;
        if store.is_some() && !Permission::is_store_policy(policy) {
            return Err(invalid());
        }
        Ok(Permission { policy, store })
    }

    /// A permission over every store the key's account owns.
    pub fn any_store(policy: &'static str) -> Permission {
        Permission { policy, store: None }
    }

    /// The policy.
    pub fn policy(&self) -> &'static str {
        self.policy
    }

    /// The one store it is limited to, if any.
    pub fn store(&self) -> Option<&str> {
        self.store.as_deref()
    }

    fn is_store_policy(policy: &str) -> bool {
        policy.starts_with("btcpay.store.")
    }

    /// Whether this permission allows `policy` on `store` (`None`: not about one store).
    pub fn allows(&self, policy: &str, store: Option<&str>) -> bool {
        if !grants(self.policy, policy) {
            return false;
        }
        if !Permission::is_store_policy(policy) {
            return true;
        }
        match (&self.store, store) {
            (None, _) => true,
            (Some(mine), Some(asked)) => mine == asked,
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.store {
            Some(store) => write!(f, "{}:{store}", self.policy),
            None => f.write_str(self.policy),
        }
    }
}

/// The permissions of one caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions(Vec<Permission>);

impl Permissions {
    /// Everything (the account's owner, signed in).
    pub fn unrestricted() -> Permissions {
        Permissions(vec![Permission::any_store(UNRESTRICTED)])
    }

    /// Reads a key's stored permission strings; any it cannot read is left out (BTCPay's
    /// rule: a permission that no longer exists grants nothing).
    pub fn from_stored(strings: &[String]) -> Permissions {
        Permissions(strings.iter().filter_map(|s| Permission::parse(s).ok()).collect())
    }

    /// Whether any permission allows `policy` on `store`.
    pub fn allows(&self, policy: &str, store: Option<&str>) -> bool {
        self.0.iter().any(|p| p.allows(policy, store))
    }

    /// Whether any permission allows `policy`, on some store or on all.
    pub fn allows_somewhere(&self, policy: &str) -> bool {
        self.0.iter().any(|p| grants(p.policy, policy))
    }

    /// The permissions, as strings.
    pub fn strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Permission {
        Permission::parse(text).expect("valid")
    }

    #[test]
    fn policies_parse_case_insensitively_and_only_store_policies_take_a_store() {
        assert_eq!(p("BTCPay.Store.CanCreateInvoice").to_string(), CAN_CREATE_INVOICE);
        assert_eq!(p("btcpay.store.cancreateinvoice:abc").store(), Some("abc"));
        for bad in [
            "btcpay.store.cancreateinvoice:",
            "btcpay.user.canviewprofile:abc",
            "unrestricted:abc",
            "btcpay.store.nothing",
            "",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn broader_policies_grant_narrower_ones_and_never_the_reverse() {
        let modify = p(CAN_MODIFY_STORE_SETTINGS);
        for narrower in [
            CAN_CREATE_INVOICE,
            CAN_VIEW_INVOICES,
            CAN_MODIFY_WEBHOOKS,
            CAN_VIEW_STORE_SETTINGS,
        ] {
            assert!(modify.allows(narrower, Some("s")), "{narrower}");
        }
        assert!(!p(CAN_CREATE_INVOICE).allows(CAN_VIEW_INVOICES, Some("s")));
        assert!(!p(CAN_VIEW_STORE_SETTINGS).allows(CAN_CREATE_INVOICE, Some("s")));
        assert!(p(CAN_VIEW_STORE_SETTINGS).allows(CAN_VIEW_INVOICES, Some("s")));
        assert!(!p(CAN_VIEW_INVOICES).allows(CAN_MODIFY_STORE_SETTINGS, Some("s")));
        assert!(modify.allows(CAN_MODIFY_PAYMENT_REQUESTS, Some("s")));
        assert!(p(CAN_MODIFY_PAYMENT_REQUESTS).allows(CAN_VIEW_PAYMENT_REQUESTS, Some("s")));
        assert!(p(CAN_VIEW_STORE_SETTINGS).allows(CAN_VIEW_PAYMENT_REQUESTS, Some("s")));
        assert!(!p(CAN_VIEW_PAYMENT_REQUESTS).allows(CAN_MODIFY_PAYMENT_REQUESTS, Some("s")));
        assert!(p(UNRESTRICTED).allows(CAN_MODIFY_STORE_SETTINGS, Some("s")));
        assert!(p(UNRESTRICTED).allows("btcpay.server.canmodifyserversettings", None));
    }

    #[test]
    fn a_store_scoped_permission_covers_that_store_only() {
        let scoped = p("btcpay.store.canmodifystoresettings:s1");
        assert!(scoped.allows(CAN_CREATE_INVOICE, Some("s1")));
        assert!(!scoped.allows(CAN_CREATE_INVOICE, Some("s2")));
        assert!(!scoped.allows(CAN_MODIFY_STORE_SETTINGS, None), "not every store");
        assert!(p(CAN_MODIFY_STORE_SETTINGS).allows(CAN_MODIFY_STORE_SETTINGS, None));
    }

    #[test]
    fn stored_permissions_that_no_longer_parse_grant_nothing() {
        let set = Permissions::from_stored(&["btcpay.store.gone".into(), format!("{CAN_VIEW_INVOICES}:s1")]);
        assert_eq!(set.strings(), vec![format!("{CAN_VIEW_INVOICES}:s1")]);
        assert!(set.allows(CAN_VIEW_INVOICES, Some("s1")));
        assert!(!set.allows(CAN_VIEW_INVOICES, Some("s2")));
    }
}
