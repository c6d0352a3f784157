/**
 * Credit balances for tokens and organisations. Amounts are kept in integer nano-dollars so
 * that repeated small charges add up exactly. A request's cost is reserved when it is admitted
 * (so concurrent requests cannot overspend) and refunded if it does not end in a success.
 */
import { type CreditConfig, DEFAULT_COST_PER_REQUEST_USD } from './config.js';

const NANO = 1e9;
const toNano = (usd: number): number => Math.round(usd * NANO);

interface Account {
  label: string;
  balance: number;
  spent: number;
}

/** A charge that can be given back. */
export interface Reservation {
  account: string;
  amount: number;
}

export interface CreditSnapshot {
  balanceUsd: number;
  spentUsd: number;
}

export function requestCostUsd(credits: CreditConfig, items: number): number {
  return (credits.costPerRequestUsd ?? DEFAULT_COST_PER_REQUEST_USD) + (credits.costPerItemUsd ?? 0) * items;
}

export class CreditLedger {
  private readonly accounts = new Map<string, Account>();

  /** Forget an account; it is opened again, full, on its next use. */
  reset(account: string): void {
    this.accounts.delete(account);
  }

  /** Take the cost of a request from `account` if the balance covers it; `null` if it does not. */
  reserve(account: string, label: string, credits: CreditConfig, items: number): Reservation | null {
    const state = this.open(account, label, credits);
    const amount = toNano(requestCostUsd(credits, items));
    if (state.balance < amount || state.balance <= 0) return null;
    state.balance -= amount;
    state.spent += amount;
    return { account, amount };
  }

  /** Take `usd` (a batch line's price) from `account` if the balance covers it; `null` if it does not. */
  reserveUsd(account: string, label: string, credits: CreditConfig, usd: number): Reservation | null {
    const state = this.open(account, label, credits);
    const amount = toNano(usd);
    if (state.balance < amount || state.balance <= 0) return null;
    state.balance -= amount;
    state.spent += amount;
    return { account, amount };
  }

  /** Whether the account has anything left (a batch API refuses new work with 402 when not). */
  hasBalance(account: string, label: string, credits: CreditConfig): boolean {
    return this.open(account, label, credits).balance > 0;
  }

  refund(reservation: Reservation): void {
    const state = this.accounts.get(reservation.account);
    if (!state) return;
    state.balance += reservation.amount;
    state.spent -= reservation.amount;
  }

  /** Balances by label (`token:<label>`, `org:<name>`). */
  snapshot(): Record<string, CreditSnapshot> {
    const result: Record<string, CreditSnapshot> = {};
    for (const state of this.accounts.values()) {
      result[state.label] = { balanceUsd: state.balance / NANO, spentUsd: state.spent / NANO };
    }
    return result;
  }

  private open(account: string, label: string, credits: CreditConfig): Account {
    let state = this.accounts.get(account);
    if (!state) {
      state = { label, balance: toNano(credits.balanceUsd), spent: 0 };
      this.accounts.set(account, state);
    }
    return state;
  }
}
