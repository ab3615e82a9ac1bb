import { io } from './latency';
import type { OrderItem } from '../features/queue/shared/types';

type Line = Pick<OrderItem, 'sku' | 'quantity'>;

export class OutOfStockError extends Error {
  constructor(sku: string, wanted: number, available: number) {
    super(`out_of_stock: ${sku} (wanted ${wanted}, available ${available})`);
    this.name = 'OutOfStockError';
  }
}

/** Stock levels and reservations (in memory, standing in for the inventory database). */
class InventoryStore {
  private readonly onHand = new Map<string, number>();
  private readonly reserved = new Map<string, Line[]>(); // by orderId
  private readonly committed = new Set<string>();

  constructor(private readonly initialStock = 1_000_000) {}

  available(sku: string): number {
    return this.onHand.get(sku) ?? this.initialStock;
  }

  /** Hold the order's items; idempotent per order. */
  async reserve(orderId: string, items: Line[]): Promise<void> {
    await io(1);
    if (this.reserved.has(orderId) || this.committed.has(orderId)) return;
    for (const { sku, quantity } of items) {
      if (this.available(sku) < quantity) throw new OutOfStockError(sku, quantity, this.available(sku));
    }
    for (const { sku, quantity } of items) this.onHand.set(sku, this.available(sku) - quantity);
    this.reserved.set(orderId, items);
  }

  /** The payment went through: the held items are sold (reserving them first if needed). */
  async commit(orderId: string, items: Line[]): Promise<void> {
    if (!this.reserved.has(orderId)) await this.reserve(orderId, items);
    await io(1);
    this.reserved.delete(orderId);
    this.committed.add(orderId);
  }

  /** Give held items back (payment failed, order cancelled); idempotent. */
  async release(orderId: string): Promise<number> {
    await io(1);
    const items = this.reserved.get(orderId);
    if (!items) return 0;
    for (const { sku, quantity } of items) this.onHand.set(sku, this.available(sku) + quantity);
    this.reserved.delete(orderId);
    return items.length;
  }

  isReserved(orderId: string): boolean {
    return this.reserved.has(orderId);
  }

  isCommitted(orderId: string): boolean {
    return this.committed.has(orderId);
  }
}

export const inventoryStore = new InventoryStore();
