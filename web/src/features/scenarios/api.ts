import { useQuery } from "@tanstack/react-query";
import { api, call } from "@/api/client";

export function useCategories() {
  return useQuery({ queryKey: ["categories"], queryFn: () => call(api.GET("/api/categories")) });
}
