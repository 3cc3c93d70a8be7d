//! Users, accounts, wallets and contacts.

use flash_core::{
    AccountId, AccountLevel, AccountStatus, Currency, Email, LedgerAccountId, Phone, UserId, Username, WalletId,
};

use crate::sql::{params, Row, Value};
use crate::{Store, StoreError};

/// A stored user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// Id.
    pub id: UserId,
    /// Verified phone, E.164.
    pub phone: Option<String>,
    /// Verified email, lower-case.
    pub email: Option<String>,
    /// Device id of a device account.
    pub device_id: Option<String>,
    /// Username as chosen.
    pub username: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// A stored account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// Id.
    pub id: AccountId,
    /// Owner.
    pub user_id: UserId,
    /// Level 0–3.
    pub level: AccountLevel,
    /// Status.
    pub status: AccountStatus,
    /// Default wallet.
    pub default_wallet_id: WalletId,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// A stored wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletRecord {
    /// Id (also its ledger account id).
    pub id: WalletId,
    /// Owner.
    pub account_id: AccountId,
    /// Currency.
    pub currency: Currency,
    /// Unix ms.
    pub created_at_ms: i64,
    /// True for a budget (money set aside for a pull payment's payouts): never listed among
    /// the account's wallets, never paid into, spent only by the payouts of what it funds.
    pub budget: bool,
}

/// One of an account's contacts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRecord {
    /// The contact's account.
    pub account_id: AccountId,
    /// The contact's username, if any.
    pub username: Option<String>,
    /// The owner's alias for the contact.
    pub alias: Option<String>,
    /// Payments between the two.
    pub transactions_count: i64,
}

/// What sign-up needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    /// Verified phone.
    pub phone: Option<Phone>,
    /// Verified email.
    pub email: Option<Email>,
    /// Device id (device accounts).
    pub device_id: Option<String>,
    /// Starting level.
    pub level: AccountLevel,
}

/// Result of setting a username.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsernameUpdate {
    /// Set.
    Set,
    /// Another user has it (case-insensitively).
    Taken,
    /// This user already has a username; usernames cannot change.
    AlreadySet,
}

/// An operator action for the append-only audit log, written in the same transaction as the
/// action itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    /// Who acted (the operator key's label).
    pub actor: String,
    /// What was done, e.g. `account.level`.
    pub action: String,
    /// What it was done to (an account or wallet id).
    pub subject: String,
    /// Details.
    pub detail: String,
}

/// A wallet with what a payment needs to know about its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletOwner {
    /// The wallet.
    pub wallet: WalletRecord,
    /// The owning account's level.
    pub level: AccountLevel,
    /// The owning account's status.
    pub status: AccountStatus,
    /// The owner's username.
    pub username: Option<String>,
}

/// Both sides of a payment, read in one query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentParties {
    /// The paying wallet, if it exists.
    pub payer: Option<WalletOwner>,
    /// The receiving wallet (by id, or the username's default wallet), if it exists.
    pub payee: Option<WalletOwner>,
    /// The journal this request's idempotency key already posted, if any.
    pub prior: Option<flash_core::JournalId>,
}

const OWNER_COLUMNS: &str =
    "SELECT w.id, w.account_id, w.currency, w.created_at, w.purpose, a.level, a.status, u.username, \
    (SELECT j.id FROM journals j WHERE j.idem_scope = $3 AND j.idem_key = $4)";

const USER_COLUMNS: &str = "SELECT id, phone, email, device_id, username, created_at FROM users";
const ACCOUNT_COLUMNS: &str = "SELECT id, user_id, level, status, default_wallet_id, created_at FROM accounts";
const WALLET_COLUMNS: &str = "SELECT id, account_id, currency, created_at, purpose FROM wallets";
/// A wallet's purpose column: an account's own wallet, or a budget.
const USER_WALLET: &str = "user";
const BUDGET_WALLET: &str = "budget";

fn user(r: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: r.parse(0)?,
        phone: r.opt_text(1)?,
        email: r.opt_text(2)?,
        device_id: r.opt_text(3)?,
        username: r.opt_text(4)?,
        created_at_ms: r.int(5)?,
    })
}

fn account(r: &Row) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        id: r.parse(0)?,
        user_id: r.parse(1)?,
        level: AccountLevel::from_number(r.int(2)?).map_err(|e| StoreError::Decode(e.to_string()))?,
        status: r.parse(3)?,
        default_wallet_id: r.parse(4)?,
        created_at_ms: r.int(5)?,
    })
}

fn wallet(r: &Row) -> Result<WalletRecord, StoreError> {
    Ok(WalletRecord {
        id: r.parse(0)?,
        account_id: r.parse(1)?,
        currency: r.parse(2)?,
        created_at_ms: r.int(3)?,
        budget: r.text(4)? == BUDGET_WALLET,
    })
}

/// The statements that create a wallet's ledger account and its row.
fn wallet_inserts(w: &WalletRecord) -> [(String, Vec<Value>); 2] {
    let purpose = if w.budget { BUDGET_WALLET } else { USER_WALLET };
    [
        (
            "INSERT INTO ledger_accounts (id, currency, kind, balance, created_at) VALUES ($1, $2, 'wallet', 0, $3)"
                .into(),
            params![w.id.to_string(), w.currency.code(), w.created_at_ms],
        ),
        (
            "INSERT INTO wallets (id, account_id, currency, created_at, purpose) VALUES ($1, $2, $3, $4, $5)".into(),
            params![
                w.id.to_string(),
                w.account_id.to_string(),
                w.currency.code(),
                w.created_at_ms,
                purpose
            ],
        ),
    ]
}

impl Store {
    /// Creates a user with an account (at `new.level`, active) and a BTC wallet, atomically.
    /// A duplicate phone, email or device id fails with a unique violation.
    pub async fn create_user(&self, new: &NewUser) -> Result<(UserRecord, AccountRecord, WalletRecord), StoreError> {
        let now = self.now_ms();
        let (user_id, account_id, wallet_id) = (UserId::generate(), AccountId::generate(), WalletId::generate());
        let currency = Currency::Btc;
        let u = UserRecord {
            id: user_id,
            phone: new.phone.as_ref().map(|p| p.as_str().to_string()),
            email: new.email.as_ref().map(|e| e.as_str().to_string()),
            device_id: new.device_id.clone(),
            username: None,
            created_at_ms: now,
        };
        let a = AccountRecord {
            id: account_id,
            user_id,
            level: new.level,
            status: AccountStatus::Active,
            default_wallet_id: wallet_id,
            created_at_ms: now,
        };
        let w = WalletRecord {
            id: wallet_id,
            account_id,
            currency,
            created_at_ms: now,
            budget: false,
        };
        self.db
            .script(
                [
                    (
                        "INSERT INTO users (id, phone, email, device_id, created_at) VALUES ($1, $2, $3, $4, $5)"
                            .into(),
                        params![
                            user_id.to_string(),
                            u.phone.clone(),
                            u.email.clone(),
                            u.device_id.clone(),
                            now
                        ],
                    ),
                    (
                        "INSERT INTO accounts (id, user_id, level, status, default_wallet_id, created_at) \
                     VALUES ($1, $2, $3, 'active', $4, $5)"
                            .into(),
                        params![
                            account_id.to_string(),
                            user_id.to_string(),
                            a.level.number(),
                            wallet_id.to_string(),
                            now
                        ],
                    ),
                ]
                .into_iter()
                .chain(wallet_inserts(&w))
                .collect(),
            )
            .await?;
        Ok((u, a, w))
    }

    /// Reads both sides of a payment and the idempotency key's prior journal in one query.
    /// The payee is `to_wallet` or, when given, the default wallet of `to_username`.
    pub async fn payment_parties(
        &self,
        from: WalletId,
        to_wallet: Option<WalletId>,
        to_username: Option<&Username>,
        key: &flash_core::IdempotencyKey,
    ) -> Result<PaymentParties, StoreError> {
        let sql = format!(
            "{OWNER_COLUMNS} FROM wallets w JOIN accounts a ON a.id = w.account_id JOIN users u ON u.id = a.user_id \
             WHERE w.id IN ($1, $2) UNION ALL \
             {OWNER_COLUMNS} FROM users u JOIN accounts a ON a.user_id = u.id JOIN wallets w ON w.id = a.default_wallet_id \
             WHERE u.username_key = $5"
        );
        let params = params![
            from.to_string(),
            to_wallet.map(|w| w.to_string()),
            key.scope.as_str(),
            key.key.as_str(),
            to_username.map(Username::key),
        ];
        let mut parties = PaymentParties::default();
        for r in self.db.query(&sql, params).await? {
            let owner = WalletOwner {
                wallet: wallet(&r)?,
                level: AccountLevel::from_number(r.int(5)?).map_err(|e| StoreError::Decode(e.to_string()))?,
                status: r.parse(6)?,
                username: r.opt_text(7)?,
            };
            parties.prior = r
                .opt_text(8)?
                .map(|s| s.parse())
                .transpose()
                .map_err(|_| StoreError::Decode("journal id".into()))?;
            let by_name =
                to_username.is_some_and(|u| owner.username.as_deref().map(str::to_ascii_lowercase) == Some(u.key()));
            if owner.wallet.id == from {
                parties.payer = Some(owner.clone());
            }
            if Some(owner.wallet.id) == to_wallet || by_name {
                parties.payee = Some(owner);
            }
        }
        Ok(parties)
    }

    /// The user with this phone.
    pub async fn user_by_phone(&self, phone: &Phone) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("{USER_COLUMNS} WHERE phone = $1");
        self.db
            .query_opt(&sql, params![phone.as_str()])
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    /// The user with this email.
    pub async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("{USER_COLUMNS} WHERE email = $1");
        self.db
            .query_opt(&sql, params![email.as_str()])
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    /// The user with this device id.
    pub async fn user_by_device(&self, device_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("{USER_COLUMNS} WHERE device_id = $1");
        self.db
            .query_opt(&sql, params![device_id])
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    /// A user by id.
    pub async fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("{USER_COLUMNS} WHERE id = $1");
        self.db
            .query_opt(&sql, params![id.to_string()])
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    /// An account by id.
    pub async fn account(&self, id: AccountId) -> Result<Option<AccountRecord>, StoreError> {
        let sql = format!("{ACCOUNT_COLUMNS} WHERE id = $1");
        self.db
            .query_opt(&sql, params![id.to_string()])
            .await?
            .as_ref()
            .map(account)
            .transpose()
    }

    /// A user's account.
    pub async fn account_of_user(&self, user_id: UserId) -> Result<Option<AccountRecord>, StoreError> {
        let sql = format!("{ACCOUNT_COLUMNS} WHERE user_id = $1");
        self.db
            .query_opt(&sql, params![user_id.to_string()])
            .await?
            .as_ref()
            .map(account)
            .transpose()
    }

    /// The account whose user has this username (case-insensitive).
    pub async fn account_by_username(&self, username: &Username) -> Result<Option<AccountRecord>, StoreError> {
        let sql = "SELECT a.id, a.user_id, a.level, a.status, a.default_wallet_id, a.created_at \
                   FROM accounts a JOIN users u ON u.id = a.user_id WHERE u.username_key = $1";
        self.db
            .query_opt(sql, params![username.key()])
            .await?
            .as_ref()
            .map(account)
            .transpose()
    }

    /// Whether a username is free.
    pub async fn username_available(&self, username: &Username) -> Result<bool, StoreError> {
        let row = self
            .db
            .query_opt("SELECT 1 FROM users WHERE username_key = $1", params![username.key()])
            .await?;
        Ok(row.is_none())
    }

    /// Sets a user's username once.
    pub async fn set_username(&self, user_id: UserId, username: &Username) -> Result<UsernameUpdate, StoreError> {
        let sql = "UPDATE users SET username = $1, username_key = $2 WHERE id = $3 AND username IS NULL";
        match self
            .db
            .execute(sql, params![username.as_str(), username.key(), user_id.to_string()])
            .await
        {
            Ok(1) => Ok(UsernameUpdate::Set),
            Ok(_) => Ok(UsernameUpdate::AlreadySet),
            Err(e) if e.is_unique_violation() => Ok(UsernameUpdate::Taken),
            Err(e) => Err(e),
        }
    }

    /// Sets a user's email (after verification). `Ok(false)` if another user has it.
    pub async fn set_email(&self, user_id: UserId, email: &Email) -> Result<bool, StoreError> {
        match self
            .db
            .execute(
                "UPDATE users SET email = $1 WHERE id = $2",
                params![email.as_str(), user_id.to_string()],
            )
            .await
        {
            Ok(n) => Ok(n == 1),
            Err(e) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates an empty budget wallet owned by `account_id` (see [`WalletRecord::budget`]).
    pub async fn budget_wallet_create(
        &self,
        account_id: AccountId,
        currency: Currency,
    ) -> Result<WalletRecord, StoreError> {
        let w = WalletRecord {
            id: WalletId::generate(),
            account_id,
            currency,
            created_at_ms: self.now_ms(),
            budget: true,
        };
        self.db.script(wallet_inserts(&w).into()).await?;
        Ok(w)
    }

    /// A budget wallet by id.
    pub async fn budget_wallet(&self, id: WalletId) -> Result<Option<WalletRecord>, StoreError> {
        self.wallet_of_purpose(id, BUDGET_WALLET).await
    }

    /// A wallet by id, if it has `purpose`.
    async fn wallet_of_purpose(&self, id: WalletId, purpose: &str) -> Result<Option<WalletRecord>, StoreError> {
        let sql = format!("{WALLET_COLUMNS} WHERE id = $1 AND purpose = $2");
        self.db
            .query_opt(&sql, params![id.to_string(), purpose])
            .await?
            .as_ref()
            .map(wallet)
            .transpose()
    }

    /// An account's own wallet by id (never a budget).
    pub async fn wallet(&self, id: WalletId) -> Result<Option<WalletRecord>, StoreError> {
        self.wallet_of_purpose(id, USER_WALLET).await
    }

    /// An account's wallets, oldest first (not its budgets).
    pub async fn wallets_of(&self, account_id: AccountId) -> Result<Vec<WalletRecord>, StoreError> {
        let sql =
            format!("{WALLET_COLUMNS} WHERE account_id = $1 AND purpose = '{USER_WALLET}' ORDER BY created_at, id");
        self.db
            .query(&sql, params![account_id.to_string()])
            .await?
            .iter()
            .map(wallet)
            .collect()
    }

    /// A wallet's balance.
    pub async fn wallet_balance(&self, id: WalletId) -> Result<i64, StoreError> {
        let ledger_id = LedgerAccountId::from(id);
        Ok(self
            .balances(std::slice::from_ref(&ledger_id))
            .await?
            .get(&ledger_id)
            .copied()
            .unwrap_or(0))
    }

    /// Sets an account's level; `false` if no such account.
    pub async fn set_account_level(
        &self,
        id: AccountId,
        level: AccountLevel,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let update = (
            "UPDATE accounts SET level = $1 WHERE id = $2".to_string(),
            params![level.number(), id.to_string()],
        );
        self.update_account_audited(update, audit).await
    }

    /// Sets an account's status; `false` if no such account.
    pub async fn set_account_status(
        &self,
        id: AccountId,
        status: AccountStatus,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let update = (
            "UPDATE accounts SET status = $1 WHERE id = $2".to_string(),
            params![status.as_str(), id.to_string()],
        );
        self.update_account_audited(update, audit).await
    }

    /// Runs an account update and its audit record in one transaction (the audit row only if
    /// the account, `audit.subject`, exists).
    async fn update_account_audited(&self, update: (String, Vec<Value>), audit: &Audit) -> Result<bool, StoreError> {
        let record = "INSERT INTO audit_log (actor, action, subject, detail, created_at) \
                      SELECT $1, $2, $3, $4, CAST($5 AS BIGINT) WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $3)";
        let params = params![
            audit.actor.as_str(),
            audit.action.as_str(),
            audit.subject.as_str(),
            audit.detail.as_str(),
            self.now_ms(),
        ];
        let changed = self.db.script(vec![update, (record.to_string(), params)]).await?;
        Ok(changed.first() == Some(&1))
    }

    /// Makes one of the account's wallets its default; `false` if the wallet is not the account's.
    pub async fn set_default_wallet(&self, id: AccountId, wallet: WalletId) -> Result<bool, StoreError> {
        let sql = "UPDATE accounts SET default_wallet_id = $1 WHERE id = $2 \
                   AND EXISTS (SELECT 1 FROM wallets w WHERE w.id = $1 AND w.account_id = $2 AND w.purpose = 'user')";
        Ok(self
            .db
            .execute(sql, params![wallet.to_string(), id.to_string()])
            .await?
            == 1)
    }

    /// An account's contacts, most used first.
    pub async fn contacts(&self, account_id: AccountId) -> Result<Vec<ContactRecord>, StoreError> {
        let sql = "SELECT c.contact_account_id, u.username, c.alias, c.transactions_count FROM contacts c \
                   JOIN accounts a ON a.id = c.contact_account_id JOIN users u ON u.id = a.user_id \
                   WHERE c.account_id = $1 ORDER BY c.transactions_count DESC, u.username";
        let rows = self.db.query(sql, params![account_id.to_string()]).await?;
        rows.iter()
            .map(|r| {
                Ok(ContactRecord {
                    account_id: r.parse(0)?,
                    username: r.opt_text(1)?,
                    alias: r.opt_text(2)?,
                    transactions_count: r.int(3)?,
                })
            })
            .collect()
    }

    /// Sets the alias of the contact with this username; `false` if not a contact.
    pub async fn set_contact_alias(
        &self,
        account_id: AccountId,
        contact: &Username,
        alias: &str,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE contacts SET alias = $1 WHERE account_id = $2 AND contact_account_id = \
                   (SELECT a.id FROM accounts a JOIN users u ON u.id = a.user_id WHERE u.username_key = $3)";
        Ok(self
            .db
            .execute(sql, params![alias, account_id.to_string(), contact.key()])
            .await?
            == 1)
    }
}
